/* Unit tests for the memory file writer: it creates a new file, and a name already taken
 * (a file, a symlink) is refused and left as it was. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/guest_mem.h"
#include "ember/memory_file.h"
#include "guest_mem_fixture.h"

#define PAGE 4096
#define PAGES 4

struct fixture {
	char dir[64];
	struct guest_mem gm;
	uint8_t *ram;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ember-test-memfile-XXXXXX");
	if (!mkdtemp(f->dir) || guest_mem_fixture_init(&f->gm, PAGES * PAGE))
		return -1;
	f->ram = f->gm.regions[0].host;
	memset(f->ram, 0x5a, PAGES * PAGE);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	guest_mem_fixture_deinit(&f->gm);
	free(f);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void assert_text(const char *path, const char *text)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(text));
	close(fd);
	assert_string_equal(buf, text);
}

static void test_memory_file_write_creates_a_0600_file(void **state)
{
	struct fixture *f = *state;
	char path[128], err[256] = "";
	struct stat st;

	snprintf(path, sizeof(path), "%s/vm.mem", f->dir);
	umask(0);
	assert_int_equal(mem_file_write(&f->gm, path, NULL, false, NULL, NULL, err, sizeof(err)),
		0);
	umask(022);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, PAGES * PAGE);
}

static void test_memory_file_write_refuses_an_existing_file(void **state)
{
	struct fixture *f = *state;
	char path[128], err[256] = "";

	snprintf(path, sizeof(path), "%s/vm.mem.tmp.1", f->dir);
	write_text(path, "someone else's");
	assert_int_equal(mem_file_write(&f->gm, path, NULL, false, NULL, NULL, err, sizeof(err)),
		-EEXIST);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "exists already"));
	assert_text(path, "someone else's");
}

static void test_memory_file_write_never_follows_a_symlink(void **state)
{
	struct fixture *f = *state;
	char path[128], target[128], err[256] = "";
	struct stat st;

	snprintf(path, sizeof(path), "%s/vm.mem.tmp.1", f->dir);
	snprintf(target, sizeof(target), "%s/precious", f->dir);
	write_text(target, "precious");
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(mem_file_write(&f->gm, path, NULL, false, NULL, NULL, err, sizeof(err)),
		-EEXIST);
	assert_text(target, "precious");
	assert_int_equal(lstat(path, &st), 0); /* the link is not removed either */
	assert_true(S_ISLNK(st.st_mode));
	/* A dangling link is no way around it: nothing is created at its target. */
	assert_int_equal(unlink(target), 0);
	assert_int_equal(mem_file_write(&f->gm, path, NULL, false, NULL, NULL, err, sizeof(err)),
		-EEXIST);
	assert_int_equal(access(target, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory_file_write_creates_a_0600_file, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_memory_file_write_refuses_an_existing_file,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_file_write_never_follows_a_symlink,
			setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
