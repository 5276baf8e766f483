/* Putting a snapshot's files in place: the one place that renames a snapshot file (state
 * or memory) over its final name. The writers (snap_writer_write, mem_file_write,
 * mem_file_merge's own output) only ever create new temporary files, complete and
 * synced, that publish then moves. Control thread. */
#ifndef EMBER_SNAPSHOT_PUBLISH_H
#define EMBER_SNAPSHOT_PUBLISH_H

#include <stddef.h>

/* Rename mem_tmp over mem_path, sync its directory, then (unless state_tmp is NULL)
 * rename state_tmp over state_path and sync that directory. Memory first, state last:
 * the state file is the commit record, so a state file that is there is never newer
 * than the memory file beside it. A crash between the two renames leaves the old state
 * file with the new memory file, which their snapshot ids tell apart (restore refuses
 * the pair, naming both). 0, or -errno with err naming the file and the step; the
 * temporaries not yet renamed stay for the caller to remove. */
__attribute__((warn_unused_result)) int snap_publish(const char *mem_tmp, const char *mem_path,
	const char *state_tmp, const char *state_path, char *err, size_t errlen);

#endif
