"""Signing keys: where they come from, how they are protected, how a trusted key is named."""

import base64
import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import platformdirs
import platformdirs.windows
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from runbook_lib import signing
from runbook_lib.exceptions import InputError


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(signing.KEY_FILE_ENV, raising=False)
    return tmp_path / "config"


@pytest.fixture
def shared_tmp():
    """A folder another user can reach (pytest's own tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="runbook-test-"))
    folder.chmod(0o755)
    yield folder
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(folder)


@contextlib.contextmanager
def as_another_user():
    """Act as someone who is not the owner of the files: root reads anything, so drop to nobody."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(65534)
    except PermissionError:
        pytest.skip("root cannot drop its effective user here")
    try:
        yield
    finally:
        os.seteuid(0)


def write_key(path, private=None, mode=0o600):
    private = private or ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    path.chmod(mode)
    return path


def test_the_per_user_key_is_created_once_with_0600_in_the_config_folder(config_home):
    assert signing.configured_public_key() is None  # looking does not create
    key = signing.load_signing_key()
    assert key.path == config_home / "lambda-secrets-runbook" / "signing-key.pem"
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.path.parent.stat().st_mode) == 0o700
    again = signing.load_signing_key()
    assert again.public == key.public and signing.configured_public_key() == key.public
    assert key.public.fingerprint.startswith("ed25519:") and len(key.public.fingerprint) == len("ed25519:") + 32
    assert key.public.verify(key.sign(b"manifest"), b"manifest") is True
    assert key.public.verify(key.sign(b"manifest"), b"manifest, edited") is False


def test_the_key_file_option_beats_the_environment_which_beats_the_default(config_home, tmp_path, monkeypatch):
    from_env = write_key(tmp_path / "env.pem")
    explicit = write_key(tmp_path / "explicit.pem")
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(from_env))
    assert signing.load_signing_key().path == from_env
    assert signing.load_signing_key(explicit).path == explicit
    assert not (config_home / "lambda-secrets-runbook").exists()


def test_a_named_key_that_is_missing_is_one_line_naming_the_option(config_home, tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"^--signing-key: no key file at .*openssl genpkey -algorithm ed25519"):
        signing.load_signing_key(tmp_path / "nope.pem")
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(tmp_path / "nope.pem"))
    with pytest.raises(InputError, match=f"^{signing.KEY_FILE_ENV}: no key file"):
        signing.load_signing_key()


def test_a_key_others_can_read_is_refused(config_home, tmp_path):
    path = write_key(tmp_path / "shared.pem", mode=0o644)
    with pytest.raises(InputError, match=r"can be read by other users \(mode 0644\): chmod 600"):
        signing.load_signing_key(path)


@pytest.mark.parametrize("content", ["rsa", "garbage", "encrypted"])
def test_a_key_that_is_not_an_unencrypted_ed25519_key_is_refused(config_home, tmp_path, content):
    path = tmp_path / "key.pem"
    if content == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    elif content == "encrypted":
        private = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"pw")))
    else:
        path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(InputError, match="is not an unencrypted Ed25519 private key"):
        signing.load_signing_key(path)


def test_an_openssl_made_key_is_accepted(config_home, tmp_path):
    path = tmp_path / "openssl.pem"
    try:
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl is not installed here")
    path.chmod(0o600)
    assert signing.load_signing_key(path).public.fingerprint.startswith("ed25519:")


def test_a_trusted_key_is_a_fingerprint_or_a_public_key_file(config_home, tmp_path):
    private = ed25519.Ed25519PrivateKey.generate()
    key = signing.SigningKey(private, tmp_path / "k.pem")
    fp = key.public.fingerprint
    pem = tmp_path / "pub.pem"
    pem.write_text(key.public.pem())
    ssh = tmp_path / "id.pub"
    ssh.write_bytes(private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                      serialization.PublicFormat.OpenSSH))
    private_file = write_key(tmp_path / "private.pem", private)
    assert {signing.trusted_fingerprint(s) for s in (fp, fp.upper(), str(pem), str(ssh), str(private_file))} == {fp}
    with pytest.raises(InputError, match="neither a key fingerprint"):
        signing.trusted_fingerprint("ed25519:1234")
    (tmp_path / "junk.pub").write_text("junk")
    with pytest.raises(InputError, match="holds no Ed25519 public key"):
        signing.trusted_fingerprint(str(tmp_path / "junk.pub"))


def test_without_a_trusted_key_your_own_key_is_trusted(config_home, tmp_path):
    assert signing.trusted_fingerprints([]) == []  # no key yet: nothing is trusted
    own = signing.load_signing_key()
    assert signing.trusted_fingerprints([]) == [own.public.fingerprint]
    other = "ed25519:" + "0" * 32
    assert signing.trusted_fingerprints([other, ""]) == [other]


def test_a_key_inside_the_folder_it_signs_is_refused(config_home, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    key = signing.load_signing_key(write_key(folder / "key.pem"))
    with pytest.raises(InputError, match="is inside the run folder"):
        signing.ensure_outside(key, folder)
    signing.ensure_outside(signing.load_signing_key(), folder)


def test_repr_names_the_key_never_its_material(config_home):
    key = signing.load_signing_key()
    text = repr(key)
    assert key.public.fingerprint in text
    body = "".join(key.path.read_text().splitlines()[1:-1])
    assert body not in text and os.fspath(key.path) in text


def test_a_recorded_public_key_is_exactly_32_bytes_of_strict_base64():
    key = signing.SigningKey(ed25519.Ed25519PrivateKey.generate(), Path("k.pem"))
    assert signing.PublicKey.from_b64(key.public.b64) == key.public
    for size in (31, 33):
        with pytest.raises(ValueError, match="^an Ed25519 public key is 32 bytes$"):
            signing.PublicKey.from_b64(base64.b64encode(b"k" * size).decode())
    padded = key.public.b64[:8] + "*" + key.public.b64[8:]  # lenient decoding would drop the "*"
    with pytest.raises(ValueError):
        signing.PublicKey.from_b64(padded)


def test_a_named_key_that_cannot_be_read_is_one_line_naming_the_option(config_home, tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    folder.mkdir()
    with pytest.raises(InputError) as error:
        signing.load_signing_key(folder)
    assert str(error.value) == f"--signing-key: cannot read {folder}: Is a directory"
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(folder))
    with pytest.raises(InputError) as error:
        signing.load_signing_key()
    assert error.value.parameter == signing.KEY_FILE_ENV
    assert str(error.value) == f"{signing.KEY_FILE_ENV}: cannot read {folder}: Is a directory"


def test_a_missing_named_key_says_how_to_make_one_or_how_to_fall_back(config_home, tmp_path):
    path = tmp_path / "nope.pem"
    with pytest.raises(InputError) as error:
        signing.load_signing_key(path)
    assert str(error.value) == (f"--signing-key: no key file at {path}: make one with `openssl genpkey -algorithm "
                                f"ed25519 -out {path}` and chmod 600 it, or leave --signing-key unset to use "
                                "your per-user key")


@pytest.mark.parametrize("named_by", ["--signing-key", signing.KEY_FILE_ENV])
def test_an_unusable_key_is_refused_naming_where_it_was_named(config_home, tmp_path, monkeypatch, named_by):
    shared = write_key(tmp_path / "shared.pem", mode=0o640)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    junk.chmod(0o600)

    def load(path):
        if named_by == "--signing-key":
            return signing.load_signing_key(path)
        monkeypatch.setenv(signing.KEY_FILE_ENV, str(path))
        return signing.load_signing_key()

    with pytest.raises(InputError) as error:
        load(shared)
    assert error.value.parameter == named_by
    assert str(error.value) == f"{named_by}: {shared} can be read by other users (mode 0640): chmod 600 {shared}"
    with pytest.raises(InputError) as error:
        load(junk)
    assert str(error.value) == (f"{named_by}: {junk} is not an unencrypted Ed25519 private key in PEM (PKCS#8); "
                                f"make one with `openssl genpkey -algorithm ed25519 -out {junk}`")


def test_the_per_user_key_is_created_in_a_config_folder_that_already_exists(config_home):
    (config_home / "lambda-secrets-runbook").mkdir(parents=True)
    (config_home / "lambda-secrets-runbook" / "other-settings.toml").write_text("")
    key = signing.load_signing_key()
    assert key.path == config_home / "lambda-secrets-runbook" / "signing-key.pem"
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600


def test_on_windows_the_per_user_key_is_in_local_appdata_without_an_author_folder(monkeypatch):
    # platformdirs' Windows layout, computed here from its documented folder override.
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.windows.Windows)
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\ops\AppData\Local")
    path = signing.default_key_path()
    assert path.name == "signing-key.pem"
    assert path.parent == Path(r"C:\Users\ops\AppData\Local", "lambda-secrets-runbook")


def test_your_own_key_named_by_option_is_what_is_trusted_and_nothing_is_created(config_home, tmp_path):
    explicit = write_key(tmp_path / "ci.pem")
    own = signing.load_signing_key(explicit).public
    assert signing.configured_public_key(explicit) == own
    assert signing.trusted_fingerprints([], explicit) == [own.fingerprint]
    assert signing.trusted_fingerprints([""], explicit) == [own.fingerprint]
    assert signing.configured_public_key() is None and not (config_home / "lambda-secrets-runbook").exists()


def test_a_trusted_key_that_is_unusable_is_one_line_naming_the_option(config_home, tmp_path, shared_tmp):
    with pytest.raises(InputError) as error:
        signing.trusted_fingerprint("ed25519:1234")
    assert error.value.parameter == "--trusted-key"
    assert str(error.value) == ("--trusted-key: 'ed25519:1234' is neither a key fingerprint (ed25519:<32 hex>) "
                                "nor a public key file")
    junk = tmp_path / "junk.pub"
    junk.write_text("junk")
    with pytest.raises(InputError) as error:
        signing.trusted_fingerprint(str(junk))
    assert str(error.value) == f"--trusted-key: {junk} holds no Ed25519 public key (PEM or OpenSSH)"
    leaked = write_key(tmp_path / "leaked.pem", mode=0o644)  # a private key others can read is not used
    with pytest.raises(InputError) as error:
        signing.trusted_fingerprint(str(leaked))
    assert str(error.value) == f"--trusted-key: {leaked} can be read by other users (mode 0644): chmod 600 {leaked}"
    private = ed25519.Ed25519PrivateKey.generate()
    locked = shared_tmp / "pub.pem"
    locked.write_text(signing.SigningKey(private, tmp_path / "k.pem").public.pem())
    locked.chmod(0o600)
    with as_another_user(), pytest.raises(InputError) as error:
        signing.trusted_fingerprint(str(locked))
    assert str(error.value) == f"--trusted-key: cannot read {locked}: Permission denied"


def test_a_key_inside_the_folder_says_to_keep_it_outside(config_home, tmp_path):
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    for inside in (folder / "key.pem", folder / "sub" / "key.pem"):
        key = signing.load_signing_key(write_key(inside))
        with pytest.raises(InputError) as error:
            signing.ensure_outside(key, folder)
        assert error.value.parameter == "--signing-key"
        assert str(error.value) == (f"--signing-key: {inside} is inside the run folder {folder.resolve()}: keep "
                                    "the signing key outside the folders it signs")
    beside = signing.load_signing_key(write_key(tmp_path / "run-key.pem"))  # a sibling with the same prefix
    signing.ensure_outside(beside, folder)
