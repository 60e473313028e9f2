"""Signing keys: where they come from, how they are protected, how a trusted key is named."""

import os
import stat
import subprocess

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
