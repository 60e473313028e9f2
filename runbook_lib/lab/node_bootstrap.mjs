// The lab's Node.js runtime bootstrap: loads the handler as the AWS Node.js runtime does,
// then runs the invocations the lab sends on stdin.
//
// The runtime copies this file into each execution environment as
// <env>/var/runtime/index.mjs (LAMBDA_RUNTIME_DIR) and starts it as `node index.mjs`,
// behind the function's exec wrapper when it has one. The protocol (JSON lines on stdin,
// replies on the fd named in lab-runtime.json, an end marker on the log pipe after each
// invocation's output) is the one described in runbook_lib/lab/python_bootstrap.py.
//
// What it reproduces, from the behaviour of AWS's runtime interface client:
// - the handler "dir/file.export.path": "file" (no extension), then file.js as CommonJS
//   unless the nearest package.json says "type": "module", then file.mjs, file.cjs, then
//   Node's own resolution; Runtime.MalformedHandlerName, Runtime.ImportModuleError
//   (CommonJS MODULE_NOT_FOUND; a missing ES module package stays Node's own Error, as on
//   AWS), Runtime.UserCodeSyntaxError, Runtime.HandlerNotFound;
// - async handlers, callback handlers with context.callbackWaitsForEmptyEventLoop, and
//   context.succeed/fail/done; Runtime.NodeJsExit when an async handler never settles;
// - console.* as "<time>\t<request id>\t<LEVEL>\t<message>" (AWS_LAMBDA_LOG_LEVEL honoured),
//   "Invoke Error" and "Uncaught Exception" log lines, error replies with errorType,
//   errorMessage and trace; an uncaught exception ends the environment (exit 129).
// - NODE_PATH (mapped from /opt/ and /var/task/ to this environment's folders) for
//   require() and, through esm_paths.mjs, for import of bare package names.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import util from 'node:util';
import { createRequire, register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(fs.readFileSync(path.join(here, 'lab-runtime.json'), 'utf8'));
const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
const localRequire = createRequire(import.meta.url);

function labPath(entry) {
  for (const [prefix, real] of [['/opt', config.opt], ['/var/task', taskRoot]]) {
    if (entry === prefix || entry.startsWith(prefix + '/')) return real + entry.slice(prefix.length);
  }
  return entry;
}

// Node read NODE_PATH before this file ran: require() is pointed at the mapped entries,
// while the variable keeps the value Lambda (or the wrapper) gave it.
const nodePath = process.env.NODE_PATH;
const searchDirs = (nodePath || '').split(':').filter(Boolean).map(labPath);
process.env.NODE_PATH = searchDirs.join(':');
localRequire('module')._initPaths();
if (nodePath === undefined) delete process.env.NODE_PATH;
else process.env.NODE_PATH = nodePath;
register(pathToFileURL(path.join(here, 'esm_paths.mjs')), { data: { dirs: searchDirs } });

// ------------------------------------------------------------------------------ errors
class RuntimeError extends Error {
  constructor(kind, message) {
    super(message);
    // not enumerable, as on an Error's prototype: the logged JSON has errorType, not name
    Object.defineProperty(this, 'name', { value: `Runtime.${kind}`, enumerable: false });
  }
}

function isErrorLike(value) {
  return value && typeof value.name === 'string' && typeof value.message === 'string'
    && typeof value.stack === 'string';
}

function errorReply(error) {
  if (util.types.isNativeError(error) || isErrorLike(error)) {
    return { errorType: error.name, errorMessage: error.message, trace: error.stack.split('\n') };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

function formatted(error) {
  const value = error instanceof Error ? error : new Error(error);
  try {
    return '\t' + JSON.stringify(value, (_key, v) => (v instanceof Error
      ? { errorType: v.name, errorMessage: v.message, code: v.code, ...v,
        stack: typeof v.stack === 'string' ? v.stack.split('\n') : v.stack }
      : v));
  } catch {
    return '\t' + JSON.stringify(errorReply(value));
  }
}

// ------------------------------------------------------------------------------ logging
let requestId;
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const minimum = Math.max(0, LEVELS.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || 'TRACE').toUpperCase()));

function logLine(level, message, ...params) {
  const text = `${new Date().toISOString()}\t${requestId}\t${level}\t${util.format(message, ...params)}`;
  process.stdout.write(text.replace(/\n/g, '\r') + '\n');
}

for (const [method, level] of [['trace', 'TRACE'], ['debug', 'DEBUG'], ['info', 'INFO'],
  ['log', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['fatal', 'FATAL']]) {
  console[method] = LEVELS.indexOf(level) >= minimum || level === 'FATAL'
    ? (message, ...params) => logLine(level, message, ...params) : () => {};
}

// ------------------------------------------------------------------------------ loading
function packageTypeIsModule(folder) {
  for (let dir = folder; ; dir = path.dirname(dir)) {
    if (dir.endsWith('/node_modules')) return false;
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    if (dir === path.dirname(dir)) return false;
  }
}

async function importUserModule(file, moduleRoot, moduleName) {
  const tryRequire = (candidate) => (fs.existsSync(candidate) ? localRequire(candidate) : undefined);
  const tryImport = async (candidate) => (fs.existsSync(candidate)
    ? import(pathToFileURL(candidate).href) : undefined);
  const plain = tryRequire(file);
  if (plain) return plain;
  const esm = fs.existsSync(file + '.js') && packageTypeIsModule(path.dirname(file + '.js'));
  if (!esm) {
    const commonjs = tryRequire(file + '.js');
    if (commonjs) return commonjs;
  }
  const loaded = (esm && await tryImport(file + '.js')) || await tryImport(file + '.mjs')
    || tryRequire(file + '.cjs');
  if (loaded) return loaded;
  return localRequire(localRequire.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(handlerString) {
  if (handlerString.includes('..')) {
    throw new RuntimeError('MalformedHandlerName', `'${handlerString}' is not a valid handler name. `
      + 'Use absolute paths when specifying root directories in handler names.');
  }
  const base = path.basename(handlerString);
  const moduleRoot = handlerString.substring(0, handlerString.indexOf(base));
  const match = base.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new RuntimeError('MalformedHandlerName', 'Bad handler');
  const [, moduleName, exportPath] = match;
  let userModule;
  try {
    userModule = await importUserModule(path.resolve(taskRoot, moduleRoot, moduleName), moduleRoot,
      moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) throw new RuntimeError('UserCodeSyntaxError', String(error));
    if (error && error.code === 'MODULE_NOT_FOUND') throw new RuntimeError('ImportModuleError', String(error));
    throw error;
  }
  const handler = exportPath.split('.').reduce((value, key) => value && value[key], userModule);
  if (!handler) throw new RuntimeError('HandlerNotFound', `${handlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new RuntimeError('HandlerNotFound', `${handlerString} is not a function`);
  return handler;
}

// ------------------------------------------------------------------------------ protocol
function endMarker(id) {
  return `\x00\x1elab-end ${id}\x1e\x00\n`;
}

function reply(message) {
  fs.writeSync(config.reply_fd, JSON.stringify(message) + '\n');
}

let inFlight = null; // { id, finish(replyBody) } while an invocation runs
let onEmptyLoop = null;

process.on('beforeExit', () => {
  const action = onEmptyLoop;
  onEmptyLoop = null;
  if (action) action();
});

let ready = false;

function initFailed(error) {
  console.error('Uncaught Exception', formatted(error));
  fs.writeSync(1, endMarker('init'));
  reply({ op: 'init_error', error: errorReply(error) });
  process.exit(129);
}

process.on('uncaughtException', (error) => {
  if (!ready) initFailed(error);
  console.error('Uncaught Exception', formatted(error));
  if (inFlight) inFlight.finish({ error: errorReply(error) });
  process.exit(129);
});

process.on('unhandledRejection', (reason) => {
  const error = new RuntimeError('UnhandledPromiseRejection',
    String(reason instanceof Error ? reason.message : reason));
  error.reason = reason;
  if (!ready) initFailed(error);
  console.error('Unhandled Promise Rejection', formatted(error));
  if (inFlight) inFlight.finish({ error: errorReply(error) });
  process.exit(128);
});

function serialise(result) {
  try {
    return { payload: JSON.stringify(result === undefined ? null : result) };
  } catch {
    return { error: errorReply(new Error('Unable to stringify response body')) };
  }
}

function invoke(handler, message) {
  requestId = message.rid;
  let finished = false;
  const finish = (body) => {
    if (finished) return;
    finished = true;
    onEmptyLoop = null;
    fs.writeSync(1, endMarker(message.rid));
    reply({ rid: message.rid, ...body });
    inFlight = null;
    process.stdin.ref();
  };
  inFlight = { id: message.rid, finish };
  const fail = (error) => {
    console.error('Invoke Error', formatted(error === undefined || error === null ? 'handled' : error));
    finish({ error: errorReply(error === undefined || error === null ? 'handled' : error) });
  };
  const done = (error, result) => ((error !== undefined && error !== null) ? fail(error) : finish(serialise(result)));
  let waitForEmptyEventLoop = true;
  const context = {
    get callbackWaitsForEmptyEventLoop() { return waitForEmptyEventLoop; },
    set callbackWaitsForEmptyEventLoop(value) { waitForEmptyEventLoop = value; },
    succeed: (result) => done(null, result),
    fail: (error) => fail(error),
    done,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    invokedFunctionArn: message.arn,
    awsRequestId: message.rid,
    clientContext: undefined,
    identity: undefined,
    getRemainingTimeInMillis: () => message.deadline_ms - Date.now(),
  };
  const callback = (error, result) => {
    onEmptyLoop = null;
    if (error !== undefined && error !== null) return fail(error);
    if (!waitForEmptyEventLoop) return finish(serialise(result));
    onEmptyLoop = () => setImmediate(() => finish(serialise(result)));
    return undefined;
  };
  const isAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
  // when the event loop empties before the handler answered: null for a plain handler
  // that never called back, an error for an async one whose promise never settled
  onEmptyLoop = () => (isAsync
    ? fail(new RuntimeError('NodeJsExit', 'The Lambda runtime client detected an unexpected Node.js '
      + 'exit code. This is most commonly caused by a Promise that was never settled. For more '
      + 'information, see https://nodejs.org/docs/latest/api/process.html#exit-codes'))
    : finish({ payload: 'null' }));
  process.stdin.unref(); // stdin must not keep the loop alive while the handler runs
  if (message.trace_id) process.env._X_AMZN_TRACE_ID = message.trace_id;
  else delete process.env._X_AMZN_TRACE_ID;
  try {
    const result = handler(JSON.parse(message.event || '{}'), context, callback);
    if (result && typeof result.then === 'function') {
      result.then(context.succeed, context.fail);
    }
  } catch (error) {
    callback(error);
  }
}

const started = performance.now();
let handler;
try {
  handler = await loadHandler(process.env._HANDLER || '');
} catch (error) {
  initFailed(error);
}
ready = true;
fs.writeSync(1, endMarker('init'));
reply({ op: 'ready', init_ms: performance.now() - started });
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const message = JSON.parse(line);
  if (message.op === 'invoke') invoke(handler, message);
});
