"""Restore of state files that are well-formed (their CRC is right) but wrong (issue 13
items 5 and 6): one snapshot of the test guest with a drive (d.state, d.mem, drive "data"
on a.img, test_snapshot_cli's), then copies edited one way
each (a NULL drive id loaded with a drive override, another CPU vendor, a vCPU count,
memory layout and backing that are not the machine's, a memory file cut short, a block
and a serial device state their models refuse). One
`ember --api-sock` process refuses every one of them through PUT /snapshot/load with a
message that names the problem, and then loads the good snapshot and runs it."""
import os
import shutil
import struct
import tempfile

from run import check, ember, test, write_def
from test_api import Ember, end_with_poweroff, state
from test_snapshot_cli import MAKE_DRIVE_SNAPSHOT

SEC_VM_INFO, SEC_MEMORY, SEC_VCPU, SEC_DEVICE, SEC_DEVICE_CONFIG = 1, 2, 4, 5, 6
TRANSPORT_STATE = 48 + 40 * 8  # virtio-mmio's fixed struct, VIRTIO_MAX_QUEUES 8
I_CPUID = 9
HEADER = 24


# ---- the state file container (include/ember/snapshot_file.h), just enough to edit ----

def crc64_jones(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x95ac9329ac4bc9b5 if crc & 1 else 0)
    return crc


def read_sections(path):
    with open(path, "rb") as f:
        img = f.read()
    count = struct.unpack_from("<I", img, 16)[0]
    pos, sections = HEADER, []
    for _ in range(count):
        sid, version, length = struct.unpack_from("<IIQ", img, pos)
        sections.append([sid, version, bytearray(img[pos + 16:pos + 16 + length])])
        pos += 16 + length
    return img[:HEADER], sections


def write_sections(path, header, sections):
    body = bytearray(header)
    for sid, version, payload in sections:
        body += struct.pack("<IIQ", sid, version, len(payload)) + payload
    body += struct.pack("<Q", crc64_jones(bytes(body)))
    with open(path, "wb") as f:
        f.write(body)


def edited(tmp, name, edit):
    """A copy of d.state with `edit(sections)` applied and the CRC made right again."""
    header, sections = read_sections(os.path.join(tmp, "d.state"))
    edit(sections)
    path = os.path.join(tmp, name + ".state")
    write_sections(path, header, sections)
    return path


def section(sections, sid, n=0):
    return [s for s in sections if s[0] == sid][n][2]


def skip_str(buf, pos):
    n = struct.unpack_from("<I", buf, pos)[0]
    return pos + 4 if n == 0xffffffff else pos + 4 + n + 1


# ---- the edits ----

def null_drive_id(sections):
    """DEVICE_CONFIG: discovery u32, drive count u32, then the first drive's id string."""
    dc = section(sections, SEC_DEVICE_CONFIG)
    end = skip_str(dc, 8)
    dc[8:end] = struct.pack("<I", 0xffffffff)


def other_vendor(sections):
    """vCPU 0's CPUID leaf 0 (kvm_cpuid2: nent, pad, then 40-byte entries) names the
    vendor this host is not."""
    vcpu = section(sections, SEC_VCPU)
    pos = 4
    while True:
        tag, length = struct.unpack_from("<II", vcpu, pos)
        if tag == I_CPUID:
            break
        pos += 8 + length
    nent = struct.unpack_from("<I", vcpu, pos + 8)[0]
    for i in range(nent):
        e = pos + 16 + 40 * i
        if struct.unpack_from("<II", vcpu, e) == (0, 0):
            ebx, ecx, edx = struct.unpack_from("<III", vcpu, e + 16)
            host = struct.pack("<III", ebx, edx, ecx)
            other = b"AuthenticAMD" if host != b"AuthenticAMD" else b"GenuineIntel"
            b, d, c = struct.unpack("<III", other)
            struct.pack_into("<III", vcpu, e + 16, b, c, d)
            return
    raise AssertionError("no CPUID leaf 0 in the vCPU section")


def two_vcpus(sections):
    struct.pack_into("<I", section(sections, SEC_VM_INFO), 0, 2)


def huge_pages(sections):
    struct.pack_into("<I", section(sections, SEC_VM_INFO), 12, 2)  # GUEST_MEM_HUGETLB


def region_moved(sections):
    """MEMORY: count u32, then gpa, size, offset u64 and plugged u32 per region."""
    struct.pack_into("<Q", section(sections, SEC_MEMORY), 4, 2 << 20)


def device(sections, name):
    """The DEVICE section named `name` (a string first: u32 length, the bytes, a NUL) and
    the offset where the device's own state starts."""
    for sid, _, payload in sections:
        if sid == SEC_DEVICE:
            n = struct.unpack_from("<I", payload, 0)[0]
            if payload[4:4 + n] == name.encode():
                return payload, 4 + n + 1
    raise AssertionError("no device section %r" % name)


def block_version_99(sections):
    """virtio-block: after the transport's struct, the model's state, u32 version first."""
    payload, at = device(sections, "virtio-block")
    struct.pack_into("<I", payload, at + TRANSPORT_STATE, 99)


def serial_fifo_overfull(sections):
    """serial: ier .. thre_pending (8 bytes), divisor u16, then rx_len u8 (<= 64)."""
    payload, at = device(sections, "serial")
    payload[at + 10] = 255


@test
def snapshot_wrong_states_are_refused_then_a_good_one_loads():
    with tempfile.TemporaryDirectory() as tmp:
        drive = os.path.join(tmp, "a.img")
        with open(drive, "wb") as f:
            f.truncate(1 << 20)
        r = ember("run", write_def(tmp, MAKE_DRIVE_SNAPSHOT, "d.lua"), tmp, timeout=60)
        check(r.returncode == 0, "making the snapshot failed: %s" % r.stderr)
        blk_sum = r.stdout.strip().splitlines()[-1]
        good_mem = os.path.join(tmp, "d.mem")
        short_mem = os.path.join(tmp, "short.mem")
        shutil.copyfile(good_mem, short_mem)
        os.truncate(short_mem, os.path.getsize(good_mem) - 4096)
        override = {"drive_overrides": [{"drive_id": "data", "path_on_host": drive}]}
        cases = [
            (edited(tmp, "null_id", null_drive_id), good_mem, override,
             "device configuration: drive: an id of 1 to 64 characters is required"),
            (edited(tmp, "vendor", other_vendor), good_mem, {},
             "differs from this host's"),
            (edited(tmp, "vcpus", two_vcpus), good_mem, {}, "1 vcpu sections for 2 vCPUs"),
            (edited(tmp, "huge", huge_pages), good_mem, {},
             "Cannot restore hugetlbfs backed snapshot by mapping the memory file"),
            (edited(tmp, "layout", region_moved), good_mem, {}, "no DRAM region at address 0"),
            # A device that refuses its state says which and why in the answer too.
            (edited(tmp, "blk99", block_version_99), good_mem, {},
             "block 'data': saved state is malformed (version 99)"),
            (edited(tmp, "fifo", serial_fifo_overfull), good_mem, {},
             "serial: saved state is malformed (receive FIFO overfull)"),
            (os.path.join(tmp, "d.state"), short_mem, {},
             "bytes, its regions need %d" % os.path.getsize(good_mem)),
        ]
        with Ember(tmp) as e:
            for state_path, mem, extra, fragment in cases:
                body = dict({"snapshot_path": state_path, "mem_file_path": mem}, **extra)
                e.expect("PUT", "/snapshot/load", body, 400, fragment)
                check(e.p.poll() is None, "ember ended after %s: %s" % (state_path, e.stderr()))
            e.expect("PUT", "/snapshot/load",
                     dict({"snapshot_path": os.path.join(tmp, "d.state"),
                           "mem_file_path": good_mem, "resume_vm": True}, **override), 204)
            check(state(e) == "Running", "restored VM not running")
            check(e.ask("blk read 8 16", "OK blk sum=") == "OK blk sum=%s" % blk_sum,
                  "the restored guest reads another drive content")
            end_with_poweroff(e)
