"""Linux soak of diff snapshots: a Linux guest writes and reads files on an ext4 drive
between diff snapshots, each merged onto its base and restored in a new VM, with the
sha256sum of its files and of /dev/vdb equal from inside the guest every time
(linux/diff_soak.lua; issue 13). EMBER_LINUX_SOAK_CYCLES sets the count (the suite runs
5; `make soak` runs 50). Needs guest user space: hardware KVM or the KVM sandbox."""
import os
import re
import subprocess
import tempfile

from run import check, ember, test
from test_linux import needs_linux_user_space

HERE = os.path.dirname(os.path.abspath(__file__))


@test
def linux_files_survive_diff_snapshots_merged_and_restored():
    d = needs_linux_user_space()
    cycles = int(os.environ.get("EMBER_LINUX_SOAK_CYCLES", "5"))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.ext4")
        # Nothing the file system does by itself may change /dev/vdb between the guest's
        # two sums: no journal to commit, inode tables written now, not lazily after mount
        # (and the guest mounts it noatime).
        subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-E",
                        "lazy_itable_init=0,lazy_journal_init=0", data, "8M"], check=True)
        r = ember("run", os.path.join(HERE, "linux", "diff_soak.lua"), tmp, d, data,
                  str(cycles), timeout=120 + 30 * cycles)
        check(r.returncode == 0 and re.search(r"linux soak: \d+ diff cycles", r.stdout),
              "status %d\nstdout %s\nstderr %s" % (r.returncode, r.stdout[-2000:],
                                                  r.stderr[-3000:]))
        print("  " + r.stdout.strip().splitlines()[-1])
