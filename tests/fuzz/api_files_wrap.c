/* For the API harnesses (fuzz_http, fuzz_api_json), linked with FUZZ_API_WRAP: the API may
 * be told to log or write metrics anywhere, so keep the fuzzer's files safe. */
#include <stddef.h>

int __wrap_log_set_file(const char *path);
int __wrap_metrics_open(const char *path, char *err, size_t errlen);
int __real_metrics_open(const char *path, char *err, size_t errlen);

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
