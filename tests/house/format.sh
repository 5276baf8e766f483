#!/bin/sh
# Every C file of ours follows .clang-format (issue 16): fails naming the files that do not,
# with the command that fixes them. third_party/ keeps its own style.
cd "$(dirname "$0")/../.." || exit 1
command -v clang-format >/dev/null || { echo "format: clang-format is not installed" >&2; exit 1; }
bad=$(git ls-files 'src/*.[ch]' 'include/*.h' 'tools/*.[ch]' 'tests/*.[ch]' |
	while read -r f; do
		clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"
	done)
if [ -n "$bad" ]; then
	echo "format: these files differ from .clang-format (clang-format -i FILE):" >&2
	echo "$bad" >&2
	exit 1
fi
echo "format: $(git ls-files 'src/*.[ch]' 'include/*.h' 'tools/*.[ch]' 'tests/*.[ch]' | wc -l) files follow .clang-format"
