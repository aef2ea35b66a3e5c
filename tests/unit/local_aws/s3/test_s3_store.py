"""The local S3's storage layer: bucket and object semantics, confinement of keys, listing order, multipart ETags."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from local_aws.s3.errors import S3Error
from local_aws.s3.keys import parse_uri
from local_aws.s3.multipart import MIN_PART_BYTES
from local_aws.s3.store import ObjectStore


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tree(path: Path) -> set[str]:
    """Every path under ``path``, relative (what a test compares before and after a refused request)."""
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "s3"


@pytest.fixture
def store(root: Path) -> ObjectStore:
    s = ObjectStore(root)
    s.create_bucket("bkt")
    return s


def code_of(excinfo: pytest.ExceptionInfo[S3Error]) -> tuple[str, int]:
    return excinfo.value.code, excinfo.value.status


# ------------------------------------------------------------------------------------------------ URIs and buckets
def test_parse_uri_splits_bucket_and_key() -> None:
    assert parse_uri("s3://bkt/a/b.txt") == ("bkt", "a/b.txt")
    assert parse_uri("s3://bkt") == ("bkt", "")
    assert parse_uri("s3://bkt/data/") == ("bkt", "data/")


@pytest.mark.parametrize("uri", ["bkt/key", "http://bkt/key", "s3://", "s3://Bad_Bucket/k", "s3://bkt/../x"])
def test_parse_uri_refuses_bad_uris(uri: str) -> None:
    with pytest.raises(S3Error) as excinfo:
        parse_uri(uri)
    assert excinfo.value.status == 400
    assert excinfo.value.code in {"InvalidArgument", "InvalidBucketName"}


def test_bucket_lifecycle(store: ObjectStore, root: Path) -> None:
    assert store.create_bucket("bkt") is False  # already there: us-east-1 answers 200
    assert store.create_bucket("other.bucket-2") is True
    (root / "Not_A_Bucket").mkdir()  # a dir no bucket name can name stays invisible
    assert [b.name for b in store.list_buckets()] == ["bkt", "other.bucket-2"]
    assert store.bucket_exists("bkt") and not store.bucket_exists("nope") and not store.bucket_exists(".meta")
    store.put_bytes("bkt", "k", b"x")
    with pytest.raises(S3Error) as excinfo:
        store.delete_bucket("bkt")
    assert code_of(excinfo) == ("BucketNotEmpty", 409)
    store.delete("bkt", "k")
    store.delete_bucket("bkt")
    assert not (root / "bkt").exists()
    with pytest.raises(S3Error) as excinfo:
        store.delete_bucket("bkt")
    assert code_of(excinfo) == ("NoSuchBucket", 404)
    with pytest.raises(S3Error) as excinfo:
        store.put_bytes("bkt", "k", b"x")
    assert code_of(excinfo) == ("NoSuchBucket", 404)


def test_bucket_creation_date_survives_restart(store: ObjectStore, root: Path) -> None:
    created = store.bucket_info("bkt").created
    assert ObjectStore(root).bucket_info("bkt").created == created


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 64, "UPPER", "under_score", "-start", "end-", "a..b", "192.168.1.10", "xn--idn", "x-s3alias", ".meta",
     "../etc", "a/b", ""],
)  # fmt: skip
def test_invalid_bucket_names_are_refused(store: ObjectStore, name: str) -> None:
    with pytest.raises(S3Error) as excinfo:
        store.create_bucket(name)
    assert code_of(excinfo) == ("InvalidBucketName", 400)


# ------------------------------------------------------------------------------------------------ objects
def test_put_head_get_round_trip(store: ObjectStore, root: Path) -> None:
    info = store.put_bytes("bkt", "dir/obj.txt", b"hello", content_type="text/plain", metadata={"k": "v"})
    assert info.etag == md5(b"hello") and info.quoted_etag == f'"{md5(b"hello")}"'
    head = store.head("bkt", "dir/obj.txt")
    assert (head.size, head.etag, head.content_type, head.metadata) == (5, info.etag, "text/plain", {"k": "v"})
    assert head.path == root / "bkt" / "dir" / "obj.txt" == store.object_path("bkt", "dir/obj.txt")
    assert head.path.read_bytes() == b"hello" == store.get_bytes("bkt", "dir/obj.txt")
    assert store.put_bytes("bkt", "plain", b"").content_type == "binary/octet-stream"  # S3's default
    with pytest.raises(S3Error) as excinfo:
        store.head("bkt", "dir")  # a prefix is not an object
    assert code_of(excinfo) == ("NoSuchKey", 404)


def test_put_file_and_copy(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    store.put_file("bkt", "a", src, content_type="application/x-test", metadata={"m": "1"})
    copied = store.copy("bkt", "a", "bkt", "b")
    assert (copied.etag, copied.content_type, copied.metadata) == (md5(b"payload"), "application/x-test", {"m": "1"})
    replaced = store.copy("bkt", "a", "bkt", "c", content_type="text/plain", metadata={})
    assert (replaced.content_type, replaced.metadata) == ("text/plain", {})
    assert store.get_bytes("bkt", "c") == b"payload"


def test_delete_is_idempotent_and_prunes_empty_dirs(store: ObjectStore, root: Path) -> None:
    store.put_bytes("bkt", "a/b/c", b"x")
    store.delete("bkt", "a/b/c")
    store.delete("bkt", "a/b/c")  # a missing key deletes fine, as in S3
    assert not (root / "bkt" / "a").exists() and not (root / ".meta" / "bkt" / "a").exists()
    store.put_bytes("bkt", "a", b"now a file")  # the prefix is gone, so the name is free again
    assert store.get_bytes("bkt", "a") == b"now a file"


def test_file_written_by_something_else_is_served(store: ObjectStore, root: Path) -> None:
    path = root / "bkt" / "models" / "model.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"first")
    info = store.head("bkt", "models/model.tar.gz")
    assert (info.etag, info.size, info.content_type) == (md5(b"first"), 5, "binary/octet-stream")
    os.utime(path, ns=(1, 1))
    path.write_bytes(b"second, longer")  # rewritten in place: the cached sidecar no longer describes it
    assert store.head("bkt", "models/model.tar.gz").etag == md5(b"second, longer")
    assert [o.key for o in store.list_objects("bkt").objects] == ["models/model.tar.gz"]


def test_overwrite_is_atomic_for_readers(store: ObjectStore, root: Path) -> None:
    store.put_bytes("bkt", "k", b"old" * 1000)
    info, stream = store.open_object("bkt", "k")
    store.put_bytes("bkt", "k", b"new")
    with stream:
        assert stream.read() == b"old" * 1000  # the reader keeps the file it opened
    assert info.etag == md5(b"old" * 1000)
    assert store.get_bytes("bkt", "k") == b"new"


class _Exploding(io.RawIOBase):
    def __init__(self) -> None:
        self.sent = False

    def read(self, size: int = -1) -> bytes:
        if self.sent:
            raise S3Error("BadDigest")
        self.sent = True
        return b"partial"


def test_failed_put_leaves_the_old_object_and_no_temp_file(store: ObjectStore, root: Path) -> None:
    store.put_bytes("bkt", "k", b"old")
    with pytest.raises(S3Error):
        store.put_stream("bkt", "k", _Exploding())
    assert store.get_bytes("bkt", "k") == b"old"
    assert list((root / ".tmp").iterdir()) == []


def test_put_across_filesystems_still_renames_atomically(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = Path.replace

    def replace(self: Path, target: str | Path) -> Path:
        if self.parent.name == ".tmp" and Path(target).is_relative_to(root / "bkt"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")  # a bucket dir symlinked to another disk
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    store.put_bytes("bkt", "dir/k", b"moved")
    assert store.get_bytes("bkt", "dir/k") == b"moved"
    assert sorted(p.name for p in (root / "bkt" / "dir").iterdir()) == ["k"]
    assert list((root / ".tmp").iterdir()) == []


def test_object_and_prefix_of_the_same_name_are_refused(store: ObjectStore) -> None:
    store.put_bytes("bkt", "a", b"x")
    with pytest.raises(S3Error) as excinfo:
        store.put_bytes("bkt", "a/b", b"y")
    assert code_of(excinfo) == ("InvalidArgument", 400)
    assert "both an object and a prefix" in excinfo.value.message
    store.put_bytes("bkt", "d/e", b"y")
    with pytest.raises(S3Error) as excinfo:
        store.put_bytes("bkt", "d", b"z")
    assert "prefix of other keys" in excinfo.value.message
    assert store.get_bytes("bkt", "a") == b"x" and store.get_bytes("bkt", "d/e") == b"y"


def test_key_length_limit(store: ObjectStore) -> None:
    longest = "/".join(["a" * 200] * 5) + "/" + "b" * 19
    assert len(longest.encode()) == 1024
    store.put_bytes("bkt", longest, b"x")
    with pytest.raises(S3Error) as excinfo:
        store.put_bytes("bkt", longest + "c", b"x")
    assert code_of(excinfo) == ("KeyTooLongError", 400)
    with pytest.raises(S3Error) as excinfo:
        store.put_bytes("bkt", "é" * 513, b"x")  # 513 characters, 1026 bytes
    assert excinfo.value.code == "KeyTooLongError"
    with pytest.raises(S3Error) as excinfo:
        store.put_bytes("bkt", "s" * 256, b"x")  # fits S3, not a filesystem name
    assert code_of(excinfo) == ("InvalidArgument", 400)


def test_keys_s3_allows_are_stored_verbatim(store: ObjectStore) -> None:
    for key in ["with space", "plus+sign", "pct%25literal", "ünïcödé/日本", "...", ".hidden", "a.b/c..d", "~tilde"]:
        store.put_bytes("bkt", key, key.encode())
        assert store.get_bytes("bkt", key) == key.encode()


# ------------------------------------------------------------------------------------------------ confinement
BAD_KEYS = [
    "../escape", "a/../../escape", "..", ".", "a/./b", "a/..", "a//b", "/abs", "trailing/", "//", "%2e%2e/escape",
    "a/%2E%2E/escape", "..%2fescape", "%2e%2e%2fescape", "a%2Fb", "%252e%252e/escape", "%25252e%25252e/x",
    ".%2e/escape", "a\\b", "..\\escape", "a%5cb", "a\x00b", "a%00b", "line\nbreak", "tab\tchar", "del\x7f", "",
]  # fmt: skip


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_everywhere_and_write_nothing(store: ObjectStore, tmp_path: Path, key: str) -> None:
    store.put_bytes("bkt", "fine", b"x")
    before = tree(tmp_path)
    operations = [
        lambda: store.put_bytes("bkt", key, b"pwned"),
        lambda: store.head("bkt", key),
        lambda: store.open_object("bkt", key),
        lambda: store.delete("bkt", key),
        lambda: store.copy("bkt", key, "bkt", "fine"),
        lambda: store.uploads.create("bkt", key),
    ]
    for operation in operations:
        with pytest.raises(S3Error) as excinfo:
            operation()
        assert code_of(excinfo) == ("InvalidArgument", 400), key
        assert excinfo.value.message  # names the problem
    assert tree(tmp_path) == before


def test_refusal_messages_name_the_problem(store: ObjectStore) -> None:
    cases = {
        "a//b": "empty path segment", "../x": "'..' path segments", "a%2Fb": "percent-encoded '/'",
        "a\\b": "backslashes", "a\x00b": "control characters", "%252e%252e": "'..' path segments",
    }  # fmt: skip
    for key, words in cases.items():
        with pytest.raises(S3Error) as excinfo:
            store.put_bytes("bkt", key, b"x")
        assert words in excinfo.value.message, key


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_bytes(b"secret")
    return secret


def test_symlinked_dir_pointing_outside_is_not_followed(store: ObjectStore, root: Path, outside: Path) -> None:
    (root / "bkt" / "link").symlink_to(outside, target_is_directory=True)
    for operation in [
        lambda: store.head("bkt", "link/secret.txt"),
        lambda: store.open_object("bkt", "link/secret.txt"),
        lambda: store.put_bytes("bkt", "link/new.txt", b"pwned"),
        lambda: store.delete("bkt", "link/secret.txt"),
    ]:
        with pytest.raises(S3Error) as excinfo:
            operation()
        assert code_of(excinfo) == ("InvalidArgument", 400)
        assert "outside its bucket" in excinfo.value.message
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert store.list_objects("bkt").objects == []


def test_symlinked_file_pointing_outside_is_not_served(store: ObjectStore, root: Path, outside: Path) -> None:
    (root / "bkt" / "leak.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(S3Error) as excinfo:
        store.get_bytes("bkt", "leak.txt")
    assert code_of(excinfo) == ("InvalidArgument", 400)
    assert store.list_objects("bkt").objects == []


def test_symlinks_inside_the_bucket_and_a_symlinked_bucket_work(store: ObjectStore, root: Path, tmp_path: Path) -> None:
    store.put_bytes("bkt", "real.txt", b"data")
    (root / "bkt" / "alias.txt").symlink_to(root / "bkt" / "real.txt")
    assert store.get_bytes("bkt", "alias.txt") == b"data"
    datasets = tmp_path / "datasets"  # a big dataset kept elsewhere, served as a bucket without copying
    (datasets / "train").mkdir(parents=True)
    (datasets / "train" / "x.jpg").write_bytes(b"jpg")
    (root / "data-bucket").symlink_to(datasets, target_is_directory=True)
    assert store.get_bytes("data-bucket", "train/x.jpg") == b"jpg"
    assert [o.key for o in store.list_objects("data-bucket").objects] == ["train/x.jpg"]
    with pytest.raises(S3Error):
        store.get_bytes("data-bucket", "../s3/bkt/real.txt")
    store.delete("data-bucket", "train/x.jpg")
    (datasets / "keep.txt").write_bytes(b"k")
    with pytest.raises(S3Error):
        store.delete_bucket("data-bucket")
    (datasets / "keep.txt").unlink()
    store.delete_bucket("data-bucket")  # removes the link, never the linked tree
    assert datasets.is_dir() and not (root / "data-bucket").exists()


# ------------------------------------------------------------------------------------------------ listing
KEYS = ["a-b", "a/b", "a/c/d", "a0", "b", "é", "z", "~x", "A", "a/c/e", "a/c.txt", "日本"]


@pytest.fixture
def listed(store: ObjectStore) -> ObjectStore:
    for key in KEYS:
        store.put_bytes("bkt", key, key.encode())
    return store


def keys_of(store: ObjectStore, **kwargs: object) -> tuple[list[str], list[str], bool]:
    page = store.list_objects("bkt", **kwargs)  # type: ignore[arg-type]
    return [o.key for o in page.objects], page.common_prefixes, page.truncated


def test_listing_is_in_utf8_binary_order(listed: ObjectStore) -> None:
    assert keys_of(listed)[0] == sorted(KEYS, key=lambda k: k.encode("utf-8"))


def test_listing_with_prefix_and_delimiter(listed: ObjectStore) -> None:
    assert keys_of(listed, delimiter="/") == (["A", "a-b", "a0", "b", "z", "~x", "é", "日本"], ["a/"], False)
    assert keys_of(listed, prefix="a/", delimiter="/") == (["a/b", "a/c.txt"], ["a/c/"], False)
    assert keys_of(listed, prefix="a/c") == (["a/c.txt", "a/c/d", "a/c/e"], [], False)  # a string prefix
    assert keys_of(listed, prefix="a/c", delimiter="/") == (["a/c.txt"], ["a/c/"], False)
    assert keys_of(listed, prefix="nothing") == ([], [], False)
    assert keys_of(listed, prefix="a", delimiter="-") == (["a/b", "a/c.txt", "a/c/d", "a/c/e", "a0"], ["a-"], False)


def test_empty_dirs_and_unnamable_files_are_not_listed(listed: ObjectStore, root: Path) -> None:
    (root / "bkt" / "empty" / "deeper").mkdir(parents=True)
    (root / "bkt" / "back\\slash").write_bytes(b"x")
    assert "empty/" not in keys_of(listed, delimiter="/")[1]
    assert "back\\slash" not in keys_of(listed)[0]


@pytest.mark.parametrize("delimiter", ["", "/"])
@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_pages_resume_after_the_last_entry(listed: ObjectStore, delimiter: str, page_size: int) -> None:
    expected = keys_of(listed, delimiter=delimiter)
    objects, prefixes, after = [], [], ""
    for _ in range(len(KEYS) + 1):
        page = listed.list_objects("bkt", delimiter=delimiter, start_after=after, max_keys=page_size)
        assert len(page.objects) + len(page.common_prefixes) <= page_size
        objects += [o.key for o in page.objects]
        prefixes += page.common_prefixes
        if not page.truncated:
            break
        assert page.last is not None
        after = page.last
    assert (objects, prefixes, False) == expected


def test_start_after_inside_a_prefix_and_max_keys_zero(listed: ObjectStore) -> None:
    assert keys_of(listed, start_after="a/c/d") == (["a/c/e", "a0", "b", "z", "~x", "é", "日本"], [], False)
    assert keys_of(listed, delimiter="/", start_after="a/")[1] == []  # the prefix itself was the last entry
    assert keys_of(listed, max_keys=0) == ([], [], False)
    assert keys_of(listed, max_keys=3) == (["A", "a-b", "a/b"], [], True)


def test_listing_an_unknown_bucket(store: ObjectStore) -> None:
    with pytest.raises(S3Error) as excinfo:
        store.list_objects("nope")
    assert code_of(excinfo) == ("NoSuchBucket", 404)


# ------------------------------------------------------------------------------------------------ multipart
def test_multipart_upload_etag_and_bytes(store: ObjectStore, root: Path) -> None:
    upload = store.uploads.create("bkt", "big.bin", content_type="application/x-tar", metadata={"run": "7"})
    one, two = os.urandom(MIN_PART_BYTES), b"tail"
    store.uploads.upload_part("bkt", "big.bin", upload.upload_id, 2, io.BytesIO(b"to be replaced"))
    p2 = store.uploads.upload_part("bkt", "big.bin", upload.upload_id, 2, io.BytesIO(two))
    p1 = store.uploads.upload_part("bkt", "big.bin", upload.upload_id, 1, io.BytesIO(one))
    _, parts, truncated = store.uploads.list_parts("bkt", "big.bin", upload.upload_id)
    assert [(p.number, p.size) for p in parts] == [(1, len(one)), (2, 4)] and not truncated
    info = store.uploads.complete("bkt", "big.bin", upload.upload_id, [(1, p1.quoted_etag), (2, p2.etag)])
    expected = hashlib.md5(bytes.fromhex(md5(one)) + bytes.fromhex(md5(two))).hexdigest() + "-2"
    assert info.etag == expected == store.head("bkt", "big.bin").etag
    assert store.get_bytes("bkt", "big.bin") == one + two
    assert (info.content_type, info.metadata, info.parts) == ("application/x-tar", {"run": "7"}, 2)
    assert list((root / ".uploads").iterdir()) == []
    with pytest.raises(S3Error) as excinfo:
        store.uploads.complete("bkt", "big.bin", upload.upload_id, [(1, p1.etag)])
    assert code_of(excinfo) == ("NoSuchUpload", 404)


def test_multipart_completion_errors(store: ObjectStore) -> None:
    upload_id = store.uploads.create("bkt", "k").upload_id
    small = store.uploads.upload_part("bkt", "k", upload_id, 1, io.BytesIO(b"small"))
    last = store.uploads.upload_part("bkt", "k", upload_id, 2, io.BytesIO(b"last"))
    cases = {
        "InvalidPartOrder": [(2, last.etag), (1, small.etag)],
        "InvalidPart": [(1, '"' + "0" * 32 + '"')],
        "EntityTooSmall": [(1, small.etag), (2, last.etag)],
        "MalformedXML": [],
    }
    for code, parts in cases.items():
        with pytest.raises(S3Error) as excinfo:
            store.uploads.complete("bkt", "k", upload_id, parts)
        assert (excinfo.value.code, excinfo.value.status) == (code, 400)
    assert store.uploads.complete("bkt", "k", upload_id, [(1, small.etag)]).size == 5  # one part may be small


@pytest.mark.parametrize("upload_id", ["../../etc", "nope", "a" * 200, "x/y" * 10])
def test_unknown_and_malformed_upload_ids(store: ObjectStore, upload_id: str) -> None:
    with pytest.raises(S3Error) as excinfo:
        store.uploads.upload_part("bkt", "k", upload_id, 1, io.BytesIO(b"x"))
    assert code_of(excinfo) == ("NoSuchUpload", 404)


def test_abort_and_upload_bound_to_its_key(store: ObjectStore, root: Path) -> None:
    upload_id = store.uploads.create("bkt", "k").upload_id
    with pytest.raises(S3Error) as excinfo:
        store.uploads.upload_part("bkt", "other", upload_id, 1, io.BytesIO(b"x"))
    assert excinfo.value.code == "NoSuchUpload"
    with pytest.raises(S3Error) as excinfo:
        store.uploads.upload_part("bkt", "k", upload_id, 10_001, io.BytesIO(b"x"))
    assert excinfo.value.code == "InvalidArgument"
    assert [u.key for u in store.uploads.list_uploads("bkt")] == ["k"]
    store.uploads.abort("bkt", "k", upload_id)
    assert store.uploads.list_uploads("bkt") == []
    with pytest.raises(S3Error):
        store.uploads.abort("bkt", "k", upload_id)


# ------------------------------------------------------------------------------------------------ concurrency
def _run(workers: list[threading.Thread]) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)


def test_concurrent_puts_gets_and_deletes(store: ObjectStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                key = f"d{i % 4}/sub/{n}-{i}"
                data = f"{n}:{i}".encode() * 50
                store.put_bytes("bkt", key, data)
                assert store.get_bytes("bkt", key) == data
                store.put_bytes("bkt", "shared", data)
                if i % 3 == 0:
                    store.delete("bkt", key)  # prunes dirs that other threads are writing into
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    _run([threading.Thread(target=work, args=(n,)) for n in range(8)])
    assert errors == []
    for info in store.list_objects("bkt", max_keys=1000).objects:
        assert md5(store.get_bytes("bkt", info.key)) == info.etag == store.head("bkt", info.key).etag
    assert len(keys_of(store)[0]) == 8 * (40 - 14) + 1


# ------------------------------------------------------------------------------------------------ URI helpers
def test_upload_dir_and_download_prefix(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    for rel in ["train/c1/a.jpg", "train/c2/b.jpg", "valid/c1/c.jpg"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    keys = store.upload_dir(src, "s3://bkt/data/")
    assert keys == ["data/train/c1/a.jpg", "data/train/c2/b.jpg", "data/valid/c1/c.jpg"]
    written = store.download_prefix("s3://bkt/data/train", tmp_path / "channel")
    assert sorted(p.relative_to(tmp_path / "channel").as_posix() for p in written) == ["c1/a.jpg", "c2/b.jpg"]
    assert (tmp_path / "channel" / "c1" / "a.jpg").read_bytes() == b"train/c1/a.jpg"
    one = store.download_prefix("s3://bkt/data/valid/c1/c.jpg", tmp_path / "single")
    assert one == [tmp_path / "single" / "c.jpg"]
    assert store.download_prefix("s3://bkt/missing/", tmp_path / "none") == []
    store.upload_file(src / "train" / "c1" / "a.jpg", "s3://bkt/copy.jpg")
    assert store.download_file("s3://bkt/copy.jpg", tmp_path / "x" / "y.jpg").read_bytes() == b"train/c1/a.jpg"
