#!/usr/bin/env python3
"""No circle between the files of the house: if a.c calls (or reads) what b.c defines, b.c
must not reach back to a.c, directly or through other files.

The calls are read from the compiled objects (`nm`): a file uses another when one of its
undefined symbols is defined there. So a call through a function pointer is not an arrow
(that is how a lower layer reaches a higher one without a circle: a callback registered
from above), and a header shared by a folder does not tie its files together. Exit status
1 naming each circle and the symbols on its arrows.

    python3 tests/house/circles.py [BUILD]     objects under BUILD (default: build)
    python3 tests/house/circles.py --self-test  two objects calling each other must fail
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFINED = set("TDBRGSVW")  # global text, data, bss, read-only, small data, weak


def sources(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "src", "tools"], check=True,
                         capture_output=True, text=True).stdout.split()
    return [f for f in out if f.endswith(".c")]


def symbols(obj):
    """(defined, used) global symbol names of one object."""
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            used.add(name)
        elif kind in DEFINED:
            defined.add(name)
    return defined, used


def arrows(objs):
    """{file: {other file: [symbols]}} for the named objects ({file: object path})."""
    owner, uses = {}, {}
    for f, obj in objs.items():
        defined, used = symbols(obj)
        for s in defined:
            owner[s] = f
        uses[f] = used
    graph = {f: {} for f in objs}
    for f, used in uses.items():
        for s in sorted(used):
            g = owner.get(s)
            if g and g != f:
                graph[f].setdefault(g, []).append(s)
    return graph


def circles(graph):
    """The strongly connected components of more than one file (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def check(objs):
    graph = arrows(objs)
    bad = circles(graph)
    for comp in bad:
        print("circles: %d files call each other round: %s" % (len(comp), ", ".join(comp)))
        for f in comp:
            for g in comp:
                if g in graph[f]:
                    syms = graph[f][g]
                    more = ", and %d more" % (len(syms) - 4) if len(syms) > 4 else ""
                    print("  %s -> %s: %s%s" % (f, g, ", ".join(syms[:4]), more))
    if not bad:
        print("circles: none among %d files" % len(objs))
    return 1 if bad else 0


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        srcs = {"a.c": "int b(void); int a(void) { return b(); }\n",
                "b.c": "int a(void); int b(void) { return 0; } int c(void) { return a(); }\n"}
        objs = {}
        for name, text in srcs.items():
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            subprocess.run(["cc", "-c", "-o", path + ".o", path], check=True)
            objs[name] = path + ".o"
        if check(objs) != 1:
            print("circles --self-test: a planted circle was not caught")
            return 1
    print("circles --self-test: the planted circle was caught")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    objs, missing = {}, []
    for f in sources(ROOT):
        obj = os.path.join(build, f + ".o")
        (objs.__setitem__(f, obj) if os.path.exists(obj) else missing.append(f))
    if missing:
        print("circles: not built: %s (run make first)" % ", ".join(missing[:5]))
        return 1
    return check(objs)


if __name__ == "__main__":
    sys.exit(main())
