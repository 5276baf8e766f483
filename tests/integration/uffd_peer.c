/* Test peer for the Uffd backend: plays ember's restore side against a handler, no KVM needed. */
/*
 * uffd_peer SOCKET MEMFILE MODE SIZE...
 * Maps one private anonymous region per SIZE (bytes, page multiples; file offsets laid
 * end to end as in a memory file), calls uffd_backend_attach(), prints
 * "attached 0xADDR:SIZE ..." and then, by MODE:
 *   touch  read every page from user mode and from the kernel (write() from guest memory
 *          into a memfd), compare with MEMFILE, write a fresh page, give a range back with
 *          MADV_DONTNEED and check it now reads as zeros; prints "OK" and exits 0.
 *   wait   wait until the handler closes the socket; prints "handler closed".
 * Attach failures print the error and exit 1; a mismatch exits 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember/guest_mem.h"
#include "ember/uffd.h"

#define PAGE 4096

static const uint8_t *file_data;
static uint64_t file_len;

static int check(const uint8_t *got, uint64_t off, size_t len, const char *how)
{
	if (memcmp(got, file_data + off, len) == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (got[i] != file_data[off + i]) {
			printf("MISMATCH %s at file offset %" PRIu64 ": 0x%02x, file has 0x%02x\n",
				how, off + i, got[i], file_data[off + i]);
			break;
		}
	exit(3);
}

static void touch(struct guest_mem *gm)
{
	const struct guest_mem_region *r0 = &gm->regions[0],
				      *last = &gm->regions[gm->nr_regions - 1];
	uint8_t page[PAGE];
	int mfd = memfd_create("uffd-peer", 0);
	uint64_t half = r0->size / 2 / PAGE * PAGE;

	/* Kernel-mode faults: write() copies from not-yet-present guest pages. */
	if (mfd < 0 || write(mfd, r0->host + half, r0->size - half) != (ssize_t)(r0->size - half)) {
		printf("MISMATCH kernel read of region 0 failed: %s\n", strerror(errno));
		exit(3);
	}
	for (uint64_t off = half; off < r0->size; off += PAGE) {
		if (pread(mfd, page, PAGE, (off_t)(off - half)) != PAGE)
			exit(3);
		check(page, r0->file_offset + off, PAGE, "kernel read");
	}
	/* A write fault on an untouched page: the file's page, then the write. */
	last->host[last->size - PAGE + 5] = 0x5a;
	check(last->host + last->size - PAGE, last->file_offset + last->size - PAGE, 5, "write");
	check(last->host + last->size - PAGE + 6, last->file_offset + last->size - PAGE + 6,
		PAGE - 6, "write");
	/* User-mode faults on every other page of every region, in a scattered order. */
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		uint64_t pages = r->size / PAGE;

		for (uint64_t k = 0; k < pages; k++) {
			uint64_t p = (k * 7919) % pages;
			if (r != last || p != pages - 1)
				check(r->host + p * PAGE, r->file_offset + p * PAGE, PAGE,
					"user read");
		}
	}
	/* A page given back and written again: zeros and the write, never the old bytes. */
	madvise(last->host, PAGE, MADV_DONTNEED);
	last->host[100] = 0xab;
	for (unsigned i = 0; i < PAGE; i++)
		if (last->host[i] != (i == 100 ? 0xab : 0)) {
			printf("MISMATCH removed page byte %u = 0x%02x, want %s\n", i,
				last->host[i], i == 100 ? "0xab" : "0");
			exit(3);
		}
	/* Balloon: give the first 16 pages of region 0 back; they must read as zeros now. */
	if (madvise(r0->host, 16 * PAGE, MADV_DONTNEED) < 0)
		exit(3);
	for (unsigned i = 0; i < 16 * PAGE; i++)
		if (r0->host[i]) {
			printf("MISMATCH removed range byte %u is 0x%02x, not 0\n", i, r0->host[i]);
			exit(3);
		}
	check(r0->host + 16 * PAGE, r0->file_offset + 16 * PAGE, PAGE, "after remove");
	close(mfd);
	printf("OK\n");
}

int main(int argc, char **argv)
{
	struct guest_mem gm = { .page_size = PAGE, .fd = -1 };
	uint64_t off = 0;
	char err[512], buf[1];
	int uffd, sock, fd;

	if (argc < 5 || argc - 4 > GUEST_MEM_MAX_REGIONS) {
		fprintf(stderr, "usage: uffd_peer SOCKET MEMFILE touch|wait SIZE...\n");
		return 2;
	}
	fd = open(argv[2], O_RDONLY);
	if (fd >= 0) {
		off_t len = lseek(fd, 0, SEEK_END);
		file_len = len > 0 ? (uint64_t)len : 0;
		file_data = len > 0 ? mmap(NULL, file_len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
		close(fd);
	}
	for (int i = 4; i < argc; i++) {
		struct guest_mem_region *r = &gm.regions[gm.nr_regions++];

		r->size = strtoull(argv[i], NULL, 0);
		r->file_offset = off;
		r->gpa = off;
		r->host = mmap(NULL, r->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r->host == MAP_FAILED)
			return 1;
		off += r->size;
	}
	gm.total = off;
	if (uffd_backend_attach(&gm, argv[1], &uffd, &sock, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("attached");
	for (unsigned i = 0; i < gm.nr_regions; i++)
		printf(" 0x%" PRIxPTR ":%" PRIu64, (uintptr_t)gm.regions[i].host,
			gm.regions[i].size);
	printf("\n");
	fflush(stdout);
	if (!strcmp(argv[3], "touch")) {
		if (!file_data || file_data == MAP_FAILED || file_len < off) {
			fprintf(stderr, "uffd_peer: %s is shorter than the regions\n", argv[2]);
			return 2;
		}
		touch(&gm);
	} else {
		while (read(sock, buf, 1) > 0)
			;
		printf("handler closed\n");
	}
	close(sock);
	close(uffd);
	return 0;
}
