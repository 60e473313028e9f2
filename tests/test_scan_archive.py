"""Tests of zip walking: each limit on both sides of its boundary, names of members, skip reasons."""

import io
import zipfile

import pytest

from runbook_lib.exceptions import InputError
from runbook_lib.scan_archive import (RATIO_CHECK_BYTES, TooLarge, ZipLimits, ZipWalker, is_archive, member_refusal,
                                      read_bounded)

LIMITS = ZipLimits(max_members=10, max_total_bytes=10_000, max_file_bytes=1_000, max_ratio=10, max_depth=1)


def _zip(members: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _info(size: int, compressed: int | None = None, flags: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("m.txt")
    info.file_size, info.compress_size, info.flag_bits = size, size if compressed is None else compressed, flags
    return info


def _walk(data: bytes, label: str = "pkg.zip", limits: ZipLimits = LIMITS):
    seen = []
    report = ZipWalker(limits, lambda content, path, report: seen.append((path, content))).report(data, label)
    return report, seen


def test_defaults_fit_a_lambda_package():
    assert ZipLimits() == ZipLimits(50_000, 512 * 1024 * 1024, 64 * 1024 * 1024, 200, 1)


def test_refusal_per_file_and_total_limits_at_their_boundaries():
    assert member_refusal(_info(1_000), LIMITS, 10_000) is None
    assert member_refusal(_info(1_001), LIMITS, 10_000) == "declared size 1001 bytes exceeds the per-file limit 1000"
    assert member_refusal(_info(500), LIMITS, 500) is None
    assert member_refusal(_info(501), LIMITS, 500) == "total uncompressed limit 10000 bytes reached"
    assert member_refusal(_info(10, flags=0x1), LIMITS, 10_000) == "encrypted member"
    assert member_refusal(_info(10, flags=0x8), LIMITS, 10_000) is None  # another flag bit: not encryption


def test_refusal_by_compression_ratio_only_above_one_megabyte():
    big = ZipLimits(max_file_bytes=64 * RATIO_CHECK_BYTES, max_total_bytes=64 * RATIO_CHECK_BYTES, max_ratio=10)
    size = RATIO_CHECK_BYTES + 1
    assert member_refusal(_info(size, compressed=size // 10 + 1), big, 10 ** 9) is None
    assert member_refusal(_info(size, compressed=size // 10), big, 10 ** 9) == \
        "compression ratio above 10:1 (zip bomb guard)"
    assert member_refusal(_info(RATIO_CHECK_BYTES, compressed=1), big, 10 ** 9) is None  # 1 MB exactly: not checked
    assert member_refusal(_info(size, compressed=0), big, 10 ** 9) is not None  # empty compressed size: as 1


def test_refusal_by_compression_ratio_at_exactly_the_ratio():
    big = ZipLimits(max_file_bytes=64 * RATIO_CHECK_BYTES, max_total_bytes=64 * RATIO_CHECK_BYTES, max_ratio=10)
    compressed = RATIO_CHECK_BYTES // 10 + 1
    assert member_refusal(_info(10 * compressed, compressed=compressed), big, 10 ** 9) is None  # 10:1 is not above
    assert member_refusal(_info(10 * compressed + 1, compressed=compressed), big, 10 ** 9) is not None


@pytest.mark.parametrize("compressed", [0, 1])
def test_a_compressed_size_under_one_byte_counts_as_one(compressed):
    huge_ratio = ZipLimits(max_file_bytes=64 * RATIO_CHECK_BYTES, max_total_bytes=64 * RATIO_CHECK_BYTES,
                           max_ratio=RATIO_CHECK_BYTES)
    size = RATIO_CHECK_BYTES + RATIO_CHECK_BYTES // 2  # above the ratio for 1 byte, under it for 2
    assert member_refusal(_info(size, compressed=compressed), huge_ratio, 10 ** 9) is not None


def test_read_bounded_stops_past_the_limit():
    data = _zip({"a.txt": b"x" * 100})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("a.txt")
        assert read_bounded(archive, info, 100) == b"x" * 100
        with pytest.raises(TooLarge):
            read_bounded(archive, info, 99)


def test_read_bounded_reads_a_large_member_whole_in_chunks():
    content = bytes(range(256)) * (10 * 1024)  # 2.5 MB: more than one chunk
    with zipfile.ZipFile(io.BytesIO(_zip({"big.bin": content}))) as archive:
        info = archive.getinfo("big.bin")
        assert read_bounded(archive, info, len(content)) == content
        with pytest.raises(TooLarge):  # the bytes of every chunk count, not only the last one's
            read_bounded(archive, info, len(content) - 1)


class _EndlessMember:
    """A member stream that never ends (a header that lies): it records what it was asked for."""

    def __init__(self):
        self.sizes = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size=-1):
        if not isinstance(size, int) or size <= 0:
            raise AssertionError(f"an unbounded read ({size!r}) of an endless member")
        self.sizes.append(size)
        return b"x" * size


def test_read_bounded_never_reads_more_than_a_chunk_past_the_limit():
    member = _EndlessMember()

    class Archive:
        def open(self, info):
            return member

    limit = 3 * 1024 * 1024 + 5
    with pytest.raises(TooLarge):
        read_bounded(Archive(), zipfile.ZipInfo("m"), limit)
    assert all(size <= 1024 * 1024 for size in member.sizes)
    assert sum(member.sizes[:-1]) <= limit < sum(member.sizes)  # it stopped at the first chunk past the limit


def test_is_archive_by_magic_or_name():
    assert is_archive("x.bin", b"PK\x03\x04rest") and not is_archive("x.bin", b"PK\x03\x05")
    assert all(is_archive(f"lib.{s}", b"") for s in ("zip", "JAR", "whl", "war"))
    assert not is_archive("lib.zipx", b"")


def test_member_names_top_level_and_labelled():
    data = _zip({"app.py": b"x = 1\n", "dir/": b""})
    assert [p for p, _ in _walk(data, label="")[1]] == ["app.py"]
    assert [p for p, _ in _walk(data, label="fn.zip")[1]] == ["fn.zip!app.py"]
    # a directory entry first: the members after it are still read
    assert [p for p, _ in _walk(_zip({"dir/": b"", "dir/app.py": b"x\n"}), label="")[1]] == ["dir/app.py"]


def test_member_limit_counts_what_was_left():
    report, seen = _walk(_zip({f"m{i}.py": b"x\n" for i in range(5)}), limits=ZipLimits(max_members=3))
    assert len(seen) == 3
    assert report.skipped == [{"path": "pkg.zip", "reason": "member limit 3 reached; 2 more members not scanned"}]
    report, seen = _walk(_zip({f"m{i}.py": b"x\n" for i in range(3)}), limits=ZipLimits(max_members=3))
    assert len(seen) == 3 and report.skipped == []


def test_total_budget_is_spent_across_members():
    report, seen = _walk(_zip({"a.txt": b"a" * 600, "b.txt": b"b" * 400, "c.txt": b"c"}),
                         limits=ZipLimits(max_total_bytes=1_000, max_file_bytes=1_000))
    assert [p for p, _ in seen] == ["pkg.zip!a.txt", "pkg.zip!b.txt"]
    assert report.skipped == [{"path": "pkg.zip!c.txt", "reason": "total uncompressed limit 1000 bytes reached"}]


def test_a_member_larger_than_its_header_stops_the_read_and_the_rest_of_the_budget(monkeypatch):
    # zipfile itself stops at the declared size; the walker's own bound is the second line of
    # defence, exercised here with a reader that finds more bytes than the header declared
    from runbook_lib import scan_archive

    def reader(archive, info, limit):
        if info.filename == "a.txt":
            raise TooLarge()
        return archive.read(info)

    monkeypatch.setattr(scan_archive, "read_bounded", reader)
    report, seen = _walk(_zip({"a.txt": b"a" * 10, "b.txt": b"b"}))
    assert seen == []
    assert report.skipped == [
        {"path": "pkg.zip!a.txt", "reason": "actual size exceeds the limit (declared size was wrong)"},
        {"path": "pkg.zip!b.txt", "reason": "total uncompressed limit 10000 bytes reached"}]


def test_corrupt_member_is_skipped_as_unreadable():
    data = bytearray(_zip({"a.txt": b"a" * 100, "b.txt": b"b"}, zipfile.ZIP_STORED))
    data[data.find(b"a" * 100) + 50] = ord("z")  # the CRC no longer matches
    report, seen = _walk(bytes(data))
    assert [p for p, _ in seen] == ["pkg.zip!b.txt"]
    assert report.skipped == [{"path": "pkg.zip!a.txt", "reason": "unreadable member (BadZipFile)"}]


def test_nested_archives_one_level_and_broken_ones():
    inner = _zip({"python/x.py": b"x = 1\n"})
    deeper = _zip({"deep.zip": _zip({"y.py": b"y\n"})})
    report, seen = _walk(_zip({"layer.zip": inner, "two.zip": deeper, "bad.zip": b"PK\x03\x04 not a zip"}))
    assert [p for p, _ in seen] == ["pkg.zip!layer.zip!python/x.py"]
    assert report.skipped == [
        {"path": "pkg.zip!two.zip!deep.zip", "reason": "nested archive deeper than 1 level(s)"},
        {"path": "pkg.zip!bad.zip", "reason": "nested archive is not a readable zip"}]
    report, seen = _walk(_zip({"layer.zip": inner}), limits=ZipLimits(max_depth=0))
    assert seen == [] and report.skipped == [{"path": "pkg.zip!layer.zip",
                                              "reason": "nested archive deeper than 0 level(s)"}]


def test_nested_archives_as_deep_as_the_limit_and_no_deeper():
    three = _zip({"a.zip": _zip({"b.zip": _zip({"c.py": b"c\n", "c.zip": _zip({"d.py": b"d\n"})})})})
    report, seen = _walk(three, limits=ZipLimits(max_depth=2))
    assert [p for p, _ in seen] == ["pkg.zip!a.zip!b.zip!c.py"]
    assert report.skipped == [{"path": "pkg.zip!a.zip!b.zip!c.zip", "reason": "nested archive deeper than 2 level(s)"}]


def test_not_a_zip_names_the_label_and_the_error_type_only():
    with pytest.raises(InputError) as info:
        ZipWalker(LIMITS, lambda *a: None).report(b"PK\x03\x04Tq7!vR2m#Lx9", "fn.zip")
    assert str(info.value) == "zip: fn.zip: not a readable zip archive (BadZipFile)"
    with pytest.raises(InputError) as info:
        ZipWalker(LIMITS, lambda *a: None).report(b"junk", "")
    assert "archive.zip: not a readable zip archive" in str(info.value)
