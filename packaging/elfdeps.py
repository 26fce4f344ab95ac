"""What a folder of ELF files needs from the system it runs on: the newest glibc symbol
version any of them was linked against (the bundle's "glibc floor"), and the shared
libraries they name that the folder does not hold.

A small reader of the ELF dynamic section (``DT_NEEDED``, ``DT_SONAME``) and of the GNU
version-needed section (``.gnu.version_r``), standard library only, so the build needs
neither pyelftools nor binutils.

    .venv/bin/python packaging/elfdeps.py dist/krea-desktop
"""

from __future__ import annotations

import os
import re
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NULL, DT_NEEDED, DT_SONAME = 0, 1, 14
_GLIBC = re.compile(r"^GLIBC_(\d+(?:\.\d+)*)$")


@dataclass
class ElfInfo:
    """What one ELF file asks of the dynamic loader."""

    needed: list[str] = field(default_factory=list)  # DT_NEEDED, in order
    soname: str | None = None
    versions: dict[str, set[str]] = field(default_factory=dict)  # library -> version names it must define

    def glibc_versions(self) -> set[tuple[int, ...]]:
        found = set()
        for names in self.versions.values():
            for name in names:
                match = _GLIBC.match(name)
                if match:
                    found.add(version_tuple(match.group(1)))
        return found


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _cstring(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", "replace")


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated ELF file")
    return data


def read_elf(path: str | os.PathLike[str]) -> ElfInfo | None:
    """The dynamic needs of the ELF file at ``path``; None when it is not an ELF file (or has
    no section headers to read them from)."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
                return None
            return _read_elf(f, wide=ident[4] == 2, order="<" if ident[5] == 1 else ">")
    except (OSError, ValueError, struct.error):
        return None


def _read_elf(f: BinaryIO, *, wide: bool, order: str) -> ElfInfo | None:
    if wide:
        shoff = struct.unpack(order + "Q", _read(f, 0x28, 8))[0]
        shentsize, shnum = struct.unpack(order + "HH", _read(f, 0x3A, 4))
        section_format = order + "IIQQQQIIQQ"
        dyn_format = order + "qQ"
    else:
        shoff = struct.unpack(order + "I", _read(f, 0x20, 4))[0]
        shentsize, shnum = struct.unpack(order + "HH", _read(f, 0x2E, 4))
        section_format = order + "IIIIIIIIII"
        dyn_format = order + "iI"
    if not shoff or shentsize < struct.calcsize(section_format):
        return None
    size = struct.calcsize(section_format)

    def section(index: int) -> tuple[int, ...]:
        return struct.unpack(section_format, _read(f, shoff + index * shentsize, size))

    if shnum == 0:  # more sections than fit the header: the count is in section 0
        shnum = section(0)[5]
    # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
    sections = [section(i) for i in range(min(shnum, 65535))]
    info = ElfInfo()

    def strings(index: int) -> bytes:
        sec = sections[index]
        return _read(f, sec[4], sec[5])

    for sec in sections:
        if sec[1] == SHT_DYNAMIC and sec[5]:
            table = strings(sec[6])
            data = _read(f, sec[4], sec[5])
            step = struct.calcsize(dyn_format)
            for pos in range(0, len(data) - step + 1, step):
                tag, value = struct.unpack_from(dyn_format, data, pos)
                if tag == DT_NULL:
                    break
                if tag == DT_NEEDED:
                    info.needed.append(_cstring(table, value))
                elif tag == DT_SONAME:
                    info.soname = _cstring(table, value)
        elif sec[1] == SHT_GNU_VERNEED and sec[5]:
            table = strings(sec[6])
            data = _read(f, sec[4], sec[5])
            pos, count = 0, sec[7] or 1 << 16
            while count and pos + 16 <= len(data):
                _version, aux_count, file_name, aux, following = struct.unpack_from(order + "HHIII", data, pos)
                names = info.versions.setdefault(_cstring(table, file_name), set())
                apos = pos + aux
                for _ in range(aux_count):
                    if apos + 16 > len(data):
                        break
                    _hash, _flags, _other, name, anext = struct.unpack_from(order + "IHHII", data, apos)
                    names.add(_cstring(table, name))
                    if not anext:
                        break
                    apos += anext
                count -= 1
                if not following:
                    break
                pos += following
    return info


def scan(folder: Path) -> dict[Path, ElfInfo]:
    """Every ELF file under ``folder`` (not following symbolic links), by path."""
    found: dict[Path, ElfInfo] = {}
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            info = read_elf(path)
            if info is not None:
                found[path] = info
    return found


def glibc_floor(files: Mapping[Path, ElfInfo]) -> tuple[str | None, list[Path]]:
    """The newest ``GLIBC_x.y`` any of ``files`` needs, and the files that need it."""
    best: tuple[int, ...] = ()
    needing: list[Path] = []
    for path, info in sorted(files.items()):
        versions = info.glibc_versions()
        if not versions:
            continue
        top = max(versions)
        if top > best:
            best, needing = top, [path]
        elif top == best:
            needing.append(path)
    return ("GLIBC_" + ".".join(map(str, best)) if best else None), needing


def host_libraries(files: Mapping[Path, ElfInfo], present: Iterable[str] = ()) -> list[str]:
    """The libraries ``files`` link to that are not among them: what the system must have.
    ``present`` adds file names found in the folder that are not ELF files themselves
    (symbolic links to libraries)."""
    have = {path.name for path in files} | {info.soname for info in files.values() if info.soname} | set(present)
    return sorted({name for info in files.values() for name in info.needed} - have)


def report(folder: Path) -> dict[str, object]:
    """The glibc floor and the host libraries of the bundle at ``folder``."""
    files = scan(folder)
    names = [p.name for p in folder.rglob("*") if p.is_symlink()]
    floor, needing = glibc_floor(files)
    return {
        "elf_files": len(files),
        "glibc_floor": floor,
        "glibc_floor_set_by": [str(p.relative_to(folder)) for p in needing],
        "host_libraries": host_libraries(files, names),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: elfdeps.py FOLDER", file=sys.stderr)
        return 2
    found = report(Path(args[0]))
    print(f"glibc floor: {found['glibc_floor']} (set by {', '.join(found['glibc_floor_set_by'])})")  # type: ignore[arg-type]
    print("host libraries:", " ".join(found["host_libraries"]))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
