#!/usr/bin/env python3
"""Reads character vectors out of an R package's lazy-load data (data/Rdata.rdx + Rdata.rdb, as
Debian's r-cran-* packages install them) without R: the .rdx index is a gzipped R serialization
(XDR) of a list whose `variables` element maps each object to (offset, length) in the .rdb; each
.rdb entry is a 4-byte big-endian size, then zlib (or a type byte 'Z' bzip2 / '2' xz / '0' none
and the stream). Only what the texts need is decoded: lists, pairlists, integers, reals, logicals
and character vectors (R Internals, "Serialization Formats").

  extract_r_texts.py PACKAGE_DIR NAME=OUT.txt [NAME=OUT.txt ...]

writes each named character vector as lines of UTF-8 text (NA elements as empty lines).
"""
import bz2
import gzip
import lzma
import os
import struct
import sys
import zlib

NILVALUE, SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 254, 1, 2, 9, 10, 13, 14, 16, 19
REFSXP = 255


class Reader:
    def __init__(self, data):
        if data[:2] != b"X\n":
            raise ValueError("not an XDR R serialization")
        self.d, self.at, self.refs = data, 2, []
        version = self.int()
        self.int(), self.int()  # the writer's R version, the minimum reader version
        if version == 3:
            n = self.int()  # the native encoding's name (read before the position is advanced)
            self.at += n

    def int(self):
        (v,) = struct.unpack_from(">i", self.d, self.at)
        self.at += 4
        return v

    def item(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == NILVALUE:
            return None
        if kind == REFSXP:
            return self.refs[(flags >> 8) - 1]
        if kind == SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == CHARSXP:
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.at:self.at + n].decode("utf-8" if flags & (1 << 15) or flags & (1 << 14) else "latin-1")
            self.at += n
            return s
        if kind == LISTSXP:  # pairlist: attributes, tag, car, cdr
            attrs = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            rest = self.item()
            out = [(tag, car)] + (rest if isinstance(rest, list) else [])
            return out
        if kind in (LGLSXP, INTSXP):
            n = self.int()
            v = list(struct.unpack_from(f">{n}i", self.d, self.at))
            self.at += 4 * n
        elif kind == REALSXP:
            n = self.int()
            v = list(struct.unpack_from(f">{n}d", self.d, self.at))
            self.at += 8 * n
        elif kind in (STRSXP, VECSXP):
            v = [self.item() for _ in range(self.int())]
        else:
            raise ValueError(f"R object type {kind} is not one this reader decodes")
        if has_attr:
            attrs = dict(self.item())
            if "names" in attrs and kind == VECSXP:
                return dict(zip(attrs["names"], v))
        return v


def load_entry(rdb, offset, length):
    raw = rdb[offset:offset + length]
    size = struct.unpack(">I", raw[:4])[0]
    body = raw[4:]
    kind = body[:1]
    if kind == b"Z":
        data = bz2.decompress(body[1:])
    elif kind == b"2":
        data = lzma.decompress(body[1:])
    elif kind == b"0":
        data = body[1:]
    else:
        data = zlib.decompress(body)
    if len(data) != size:
        raise ValueError("lazy-load entry has the wrong size")
    return Reader(data).item()


def main():
    package, wanted = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
    base = os.path.join(package, "data", "Rdata")
    index = Reader(gzip.decompress(open(base + ".rdx", "rb").read())).item()
    rdb = open(base + ".rdb", "rb").read()
    variables = index["variables"]
    for name, out in wanted.items():
        if name not in variables:
            raise SystemExit(f"{package}: no data object {name} (it has {', '.join(sorted(variables))})")
        offset, length = (int(x) for x in variables[name])
        lines = load_entry(rdb, offset, length)
        if not isinstance(lines, list) or not all(l is None or isinstance(l, str) for l in lines):
            raise SystemExit(f"{package}: {name} is not a character vector")
        tmp = out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join("" if l is None else l for l in lines))  # as ../shared/corpora: no final newline
        os.replace(tmp, out)
        print(f"{out}: {len(lines)} lines from {os.path.basename(package)}::{name}")


if __name__ == "__main__":
    main()
