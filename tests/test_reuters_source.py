"""Tests for pipeline.sources.reuters (and the shared safe_extract_tar)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from pipeline.core.errors import DataError, SourceUnavailable
from pipeline.sources import reuters
from pipeline.sources._download import fetch_url, safe_extract_tar

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def doc(newid, split, topics, title=None, body=None, topics_attr="YES", text_type=""):
    parts = [
        f"<TITLE>{title}</TITLE>" if title is not None else "",
        f"<BODY>{body}</BODY>" if body is not None else "",
    ]
    return (
        f'<REUTERS TOPICS="{topics_attr}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" OLDID="{newid + 5000}" NEWID="{newid}">\n'
        f"<DATE>26-FEB-1987 15:01:01.79</DATE>\n<TOPICS>{''.join(f'<D>{t}</D>' for t in topics)}</TOPICS>\n"
        f"<PLACES><D>usa</D></PLACES>\n<UNKNOWN>&#5;&#5;&#5;C T\n&#22;&#22;&#1;f0704&#31;reute</UNKNOWN>\n"
        f"<TEXT{text_type}>&#2;\n{''.join(parts)}\n</TEXT>\n</REUTERS>\n"
    )


SGML = (
    '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n'
    + doc(1, "TRAIN", ["earn"], "AMERICAN &lt;AMX> Q1 NET", "Profit &amp; sales rose.\n Reuter\n&#3;")
    + doc(2, "TEST", ["acq", "earn"], "BRIEF TITLE ONLY", None, text_type=' TYPE="BRIEF"')
    + '<REUTERS TOPICS="NO" LEWISSPLIT="NOT-USED" CGISPLIT="TRAINING-SET" OLDID="1" NEWID="3">\n'
    '<TOPICS></TOPICS>\n<TEXT TYPE="UNPROC">&#2;\nFED WEEKLY REPORT\n Net reserves 644 vs 1,337\n&#3;</TEXT>\n</REUTERS>\n'
)


def online(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_parse_sgml_fields():
    docs = reuters.parse_sgml(SGML)
    assert [d["newid"] for d in docs] == [1, 2, 3]
    assert docs[0]["lewissplit"] == "TRAIN" and docs[0]["topics_attr"] == "YES"
    assert docs[1]["topics"] == ["acq", "earn"] and docs[2]["topics"] == []
    assert set(docs[0]) == {"newid", "lewissplit", "topics_attr", "topics", "title", "body"}


def test_parse_sgml_unescapes_entities():
    first = reuters.parse_sgml(SGML)[0]
    assert first["title"] == "AMERICAN <AMX> Q1 NET"
    assert first["body"] == "Profit & sales rose.\n Reuter"  # &#3; (end of text) dropped


def test_parse_sgml_document_without_body():
    brief = reuters.parse_sgml(SGML)[1]
    assert brief["title"] == "BRIEF TITLE ONLY" and brief["body"] == ""


def test_parse_sgml_unprocessed_text_becomes_body():
    unproc = reuters.parse_sgml(SGML)[2]
    assert unproc["title"] == "" and unproc["body"] == "FED WEEKLY REPORT\n Net reserves 644 vs 1,337"


@pytest.fixture
def tiny_corpus(tmp_path):
    (tmp_path / "reut2-000.sgm").write_bytes(
        (
            doc(10, "TRAIN", ["earn"], "EARN A", "Body a.")
            + doc(11, "TRAIN", ["acq"], "ACQ B", "Body b \xe9.")  # latin-1 byte
            + doc(12, "TRAIN", ["grain", "wheat"], "MULTI", "dropped: two topics")
            + doc(13, "TRAIN", ["cocoa"], "COCOA", "dropped: topic not in test")
            + doc(14, "TRAIN", ["earn"], "NO", "dropped: TOPICS=NO", topics_attr="NO")
        ).encode("latin-1")
    )
    (tmp_path / "reut2-001.sgm.gz").write_bytes(
        gzip.compress(
            (
                doc(20, "TEST", ["earn"], "EARN BRIEF", None, text_type=' TYPE="BRIEF"')
                + doc(21, "TEST", ["acq"], "ACQ C", "Body c.")
                + doc(22, "NOT-USED", ["earn"], "UNUSED", "dropped: not ModApte")
            ).encode("latin-1")
        )
    )
    return tmp_path


def test_load_r52_applies_modapte_single_label_shared_topics(tiny_corpus):
    train, test = reuters.load_r52(tiny_corpus)
    assert list(train.columns) == ["id", "text", "label"]
    assert train["id"].tolist() == ["reuters_10", "reuters_11"]
    assert train["label"].tolist() == ["earn", "acq"]
    assert test["id"].tolist() == ["reuters_20", "reuters_21"]
    assert train["text"].tolist() == ["EARN A\nBody a.", "ACQ B\nBody b \xe9."]


def test_load_r52_keeps_document_without_body(tiny_corpus):
    _, test = reuters.load_r52(tiny_corpus)
    assert test["text"].iloc[0] == "EARN BRIEF"


def test_load_r52_without_sgml_files_is_a_clear_error(tmp_path):
    (tmp_path / "README.txt").write_text("nothing here")
    with pytest.raises(DataError, match=r"no Reuters-21578 files \(reut2-000\.sgm") as err:
        reuters.load_r52(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_real_r52_counts():
    folder = SHARED / "reuters21578"
    if not (folder / "reut2-000.sgm.gz").is_file():
        pytest.skip(f"{folder} not available")
    start = time.monotonic()
    train, test = reuters.load_r52(folder)
    assert time.monotonic() - start < 10
    assert (len(train), len(test)) == (6532, 2568)
    assert train["label"].nunique() == test["label"].nunique() == 52
    assert set(train["label"]) == set(test["label"])
    assert train["label"].value_counts().head(2).to_dict() == {"earn": 2840, "acq": 1596}
    ids = train["id"].tolist() + test["id"].tolist()
    assert len(ids) == len(set(ids))


def test_download_offline_raises_source_unavailable(tmp_path):
    if online("kdd.ics.uci.edu"):
        pytest.skip("network reachable: offline behaviour not testable")
    start = time.monotonic()
    with pytest.raises(SourceUnavailable) as err:
        reuters.download(tmp_path, timeout=5)
    assert time.monotonic() - start < 15
    assert reuters.URL in err.value.fix and "validation.reuters.local_dir" in err.value.fix


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_url_over_http_hash_mismatch(http_server, tmp_path):
    root, base = http_server
    (root / "reuters21578.tar.gz").write_bytes(b"tampered")
    dest = tmp_path / "cache" / "reuters21578.tar.gz"
    with pytest.raises(DataError, match=hashlib.sha256(b"tampered").hexdigest()):
        fetch_url(f"{base}/reuters21578.tar.gz", dest, reuters.SHA256, timeout=5)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_fetch_url_http_404_is_source_unavailable(http_server, tmp_path):
    _, base = http_server
    with pytest.raises(SourceUnavailable, match="404"):
        fetch_url(f"{base}/missing.tar.gz", tmp_path / "x.tar.gz", "0" * 64, timeout=5)


def test_download_extracts_and_loads(http_server, tmp_path, tiny_corpus, monkeypatch):
    root, base = http_server
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:  # the real archive has files at top level
        tar.add(tiny_corpus / "reut2-000.sgm", arcname="reut2-000.sgm")
        data = gzip.decompress((tiny_corpus / "reut2-001.sgm.gz").read_bytes())
        info = tarfile.TarInfo("reut2-001.sgm")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (root / "reuters21578.tar.gz").write_bytes(buffer.getvalue())
    monkeypatch.setattr(reuters, "URL", f"{base}/reuters21578.tar.gz")
    monkeypatch.setattr(reuters, "SHA256", hashlib.sha256(buffer.getvalue()).hexdigest())
    folder = reuters.download(tmp_path / "cache")
    assert folder == tmp_path / "cache" / "reuters21578"
    train, test = reuters.load_r52(folder)
    assert (len(train), len(test)) == (2, 2)


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return archive


@pytest.mark.parametrize("name", ["../evil", "sub/../../evil", "/tmp/evil"])
def test_safe_extract_tar_refuses_escaping_member(tmp_path, name):
    archive = _tar_with(tmp_path, tarfile.TarInfo(name))
    with pytest.raises(DataError, match="refusing to extract"):
        safe_extract_tar(archive, tmp_path / "out" / "dest")
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (tmp_path / "out" / "dest").exists()


def test_safe_extract_tar_refuses_symlink_out(tmp_path):
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc"
    with pytest.raises(DataError, match="refusing to extract"):
        safe_extract_tar(_tar_with(tmp_path, link), tmp_path / "dest")


def test_safe_extract_tar_extracts_plain_members(tmp_path):
    archive = _tar_with(tmp_path, tarfile.TarInfo("dir/file.txt"), b"hello")
    dest = safe_extract_tar(archive, tmp_path / "dest")
    assert (dest / "dir" / "file.txt").read_bytes() == b"hello"
