"""The bundle's glibc floor and host libraries, read from ELF files without binutils."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import load_script

elfdeps = load_script("elfdeps")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF files are Linux's")


def real_elf_files() -> list[Path]:
    """A program and shared libraries of this machine (the Python running the tests and
    what it links to)."""
    exe = Path(sys.executable).resolve()
    found = [exe]
    for library in ("libc.so.6", "libm.so.6", "libstdc++.so.6", "libz.so.1"):
        for folder in (
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib",
        ):
            if (Path(folder) / library).exists():
                found.append((Path(folder) / library).resolve())
                break
    return found


def objdump_needs(path: Path) -> tuple[list[str], dict[str, set[str]]]:
    """DT_NEEDED and the version references, as binutils reads them."""
    text = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"^\s+NEEDED\s+(\S+)$", text, re.M)
    versions: dict[str, set[str]] = {}
    current = None
    in_refs = False
    for line in text.splitlines():
        if line.startswith("Version References:"):
            in_refs = True
            continue
        if in_refs:
            match = re.match(r"^\s+required from (\S+):$", line)
            if match:
                current = versions.setdefault(match.group(1), set())
                continue
            match = re.match(r"^\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ (\S+)$", line)
            if match and current is not None:
                current.add(match.group(1))
            elif line.strip() == "":
                in_refs = False
    return needed, versions


@pytest.mark.skipif(shutil.which("objdump") is None, reason="binutils is not installed")
@pytest.mark.parametrize("path", real_elf_files(), ids=lambda p: p.name)
def test_the_reader_agrees_with_binutils(path: Path) -> None:
    info = elfdeps.read_elf(path)
    assert info is not None
    needed, versions = objdump_needs(path)
    assert info.needed == needed
    assert info.versions == versions


def test_files_that_are_not_elf_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "script").write_text("#!/bin/sh\n")
    (tmp_path / "short").write_bytes(b"\x7fELF\x02\x01")
    (tmp_path / "garbage").write_bytes(b"\x7fELF\x02\x01\x01" + b"\xff" * 200)
    assert elfdeps.read_elf(tmp_path / "script") is None
    assert elfdeps.read_elf(tmp_path / "short") is None
    assert elfdeps.read_elf(tmp_path / "garbage") is None
    assert elfdeps.read_elf(tmp_path / "missing") is None


def test_floor_and_host_libraries_of_a_folder(tmp_path: Path) -> None:
    files = real_elf_files()
    for path in files:
        shutil.copy2(path, tmp_path / path.name)
    (tmp_path / "libc-alias.so").symlink_to(files[0].name)
    found = elfdeps.report(tmp_path)
    infos = {p: elfdeps.read_elf(p) for p in files}
    top = max(v for info in infos.values() if info for v in info.glibc_versions())
    assert found["glibc_floor"] == "GLIBC_" + ".".join(map(str, top))
    assert found["glibc_floor_set_by"]
    assert found["elf_files"] == len(files)
    hosts = found["host_libraries"]
    present = {p.name for p in files}
    assert not present & set(hosts)  # what the folder holds is not asked of the host
    assert all(name in {n for i in infos.values() if i for n in i.needed} for name in hosts)


def test_glibc_floor_compares_versions_as_numbers() -> None:
    older = elfdeps.ElfInfo(versions={"libc.so.6": {"GLIBC_2.9", "GLIBC_2.2.5", "GLIBC_PRIVATE"}})
    newer = elfdeps.ElfInfo(versions={"libm.so.6": {"GLIBC_2.29"}, "libstdc++.so.6": {"GLIBCXX_3.4.30"}})
    floor, needing = elfdeps.glibc_floor({Path("a"): older, Path("b"): newer})
    assert (floor, needing) == ("GLIBC_2.29", [Path("b")])
    assert elfdeps.glibc_floor({Path("a"): elfdeps.ElfInfo()}) == (None, [])
