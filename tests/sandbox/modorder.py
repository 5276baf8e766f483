#!/usr/bin/env python3
"""Print the modules.dep paths of the named kernel modules and of everything they need,
each once, every module after the modules it depends on (the load order for insmod).
Usage: modorder.py MODULES.DEP NAME...   ('-' and '_' in names are the same, as in kmod)"""
import os
import sys


def main():
    deps = {}
    by_name = {}
    with open(sys.argv[1]) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
            by_name[os.path.basename(path).split(".ko")[0].replace("-", "_")] = path
    order, seen = [], set()

    def visit(path):
        if path in seen:
            return
        seen.add(path)
        for d in deps.get(path, []):
            visit(d)
        order.append(path)

    for name in sys.argv[2:]:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            sys.exit("modorder: no module %s in %s" % (name, sys.argv[1]))
        visit(path)
    print("\n".join(order))


if __name__ == "__main__":
    main()
