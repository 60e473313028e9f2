// Module resolution hooks of the lab's Node.js runtime (registered by node_bootstrap.mjs).
//
// ES modules ignore NODE_PATH, yet on Lambda an `import` of a bare package name finds the
// runtime's AWS SDK and packages in layers (/opt/nodejs/node_modules...). When Node's own
// resolution does not find a bare specifier, this resolves it again from each NODE_PATH
// folder (those named node_modules, where packages live), in order; otherwise Node's
// error stands.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

let dirs = [];

export async function initialize(data) {
  dirs = (data && data.dirs) || [];
}

function isBare(specifier) {
  return !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (!isBare(specifier) || error.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    for (const dir of dirs.filter((d) => path.basename(d) === 'node_modules')) {
      // resolving from a file next to a node_modules folder looks inside that folder
      const parentURL = pathToFileURL(path.join(path.dirname(dir), 'lab-resolve.mjs')).href;
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {
        // not in this folder: try the next one
      }
    }
    throw error;
  }
}
