/* What the API harnesses (fuzz_http, fuzz_api_json) share: libFuzzer's initializer, which
 * makes the loop their API runs on, and, linked with FUZZ_API_WRAP, the log and metrics
 * files kept away from wherever a fuzzed request points them. */
#include "api_common.h"

#include <stddef.h>

#include "ember/log.h"

struct ev_loop *fuzz_loop;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int __wrap_log_set_file(const char *path);
int __wrap_metrics_open(const char *path, char *err, size_t errlen);
int __real_metrics_open(const char *path, char *err, size_t errlen);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_loop = ev_loop_new(EVFLAG_AUTO);
	log_set_enabled(false);
	return 0;
}

int __wrap_log_set_file(const char *path)
{
	(void)path;
	return 0;
}

int __wrap_metrics_open(const char *path, char *err, size_t errlen)
{
	(void)path;
	return __real_metrics_open("/dev/null", err, errlen);
}
