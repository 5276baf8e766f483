/* The MMDS data store: the JSON tree, the version and IMDS compatibility. */
#include "ember/mmds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct mmds *mmds_new(void)
{
	struct mmds *m = calloc(1, sizeof(*m));
	pthread_mutexattr_t a;

	if (!m)
		return NULL;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&m->lock, &a);
	pthread_mutexattr_destroy(&a);
	m->version = MMDS_V1;
	m->size_limit = MMDS_DATA_LIMIT;
	return m;
}

void mmds_lock(struct mmds *m)
{
	pthread_mutex_lock(&m->lock);
}

void mmds_unlock(struct mmds *m)
{
	pthread_mutex_unlock(&m->lock);
}

void mmds_free(struct mmds *m)
{
	if (!m)
		return;
	cJSON_Delete(m->data);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void mmds_reset(struct mmds *m)
{
	mmds_lock(m);
	cJSON_Delete(m->data);
	m->data = NULL;
	m->version = MMDS_V1;
	m->imds_compat = false;
	memset(m->tokens, 0, sizeof(m->tokens));
	mmds_unlock(m);
}

void mmds_configure(struct mmds *m, enum mmds_version version, bool imds_compat)
{
	mmds_lock(m);
	m->version = version == MMDS_V2 ? MMDS_V2 : MMDS_V1;
	m->imds_compat = imds_compat;
	mmds_unlock(m);
}

enum mmds_version mmds_version(struct mmds *m)
{
	enum mmds_version v;

	mmds_lock(m);
	v = m->version;
	mmds_unlock(m);
	return v;
}

bool mmds_imds_compat(struct mmds *m)
{
	bool compat;

	mmds_lock(m);
	compat = m->imds_compat;
	mmds_unlock(m);
	return compat;
}

int mmds_data_copy(struct mmds *m, cJSON **out)
{
	int ret = 0;

	mmds_lock(m);
	*out = NULL;
	if (!m->data)
		ret = -ENOENT;
	else if (!(*out = cJSON_Duplicate(m->data, 1)))
		ret = -ENOMEM;
	mmds_unlock(m);
	return ret;
}

int mmds_set_data(struct mmds *m, cJSON *v)
{
	char *text = cJSON_PrintUnformatted(v);
	size_t len = text ? strlen(text) : 0;

	cJSON_free(text);
	if (!text) {
		cJSON_Delete(v);
		return -ENOMEM;
	}
	if (len > m->size_limit) {
		cJSON_Delete(v);
		return -EFBIG;
	}
	mmds_lock(m);
	cJSON_Delete(m->data);
	m->data = v;
	mmds_unlock(m);
	return 0;
}

void mmds_set_size_limit(struct mmds *m, size_t bytes)
{
	mmds_lock(m);
	m->size_limit = bytes;
	mmds_unlock(m);
}

int mmds_load_file(struct mmds *m, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	char *buf = NULL;
	cJSON *v;
	ssize_t n;

	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "metadata %s: %s", path, strerror(errno));
		return ret;
	}
	/* The text may be pretty-printed: allow it some room beyond the compact limit. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		(uint64_t)st.st_size > 16 * (uint64_t)m->size_limit) {
		snprintf(err, errlen, "metadata %s: not a regular file of at most %llu bytes", path,
			16 * (unsigned long long)m->size_limit);
		ret = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	if (n != st.st_size) {
		snprintf(err, errlen, "metadata %s: %s", path,
			buf ? "short read" : "out of memory");
		ret = -EIO;
		goto out;
	}
	buf[n] = '\0';
	v = cJSON_ParseWithLength(buf, (size_t)n);
	if (!v) {
		snprintf(err, errlen, "metadata %s: not valid JSON", path);
		ret = -EINVAL;
		goto out;
	}
	ret = mmds_set_data(m, v);
	if (ret == -EFBIG)
		snprintf(err, errlen, "metadata %s: more than the MMDS limit of %zu bytes", path,
			m->size_limit);
	else if (ret)
		snprintf(err, errlen, "metadata %s: %s", path, strerror(-ret));
out:
	free(buf);
	close(fd);
	return ret;
}
