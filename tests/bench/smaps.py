"""A process's memory mappings as /proc/PID/smaps lists them, for the RSS figures."""


def mappings(pid):
    """Each mapping of process `pid`: (size in bytes, path or "", {field: kB})."""
    out = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                fields = {}
                out.append((hi - lo, head[5] if len(head) >= 6 else "", fields))
            elif len(head) >= 2 and head[1].isdigit():
                fields[head[0][:-1]] = int(head[1])
    return out
