/* What an ELF file needs from the dynamic loader: its interpreter, DT_NEEDED and run path. */
#include "jailer.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PHDRS 128
#define MAX_DYN_BYTES (64 * 1024)
#define MAX_STRTAB_BYTES (4 * 1024 * 1024)

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t got = pread(fd, buf, len, (off_t)off);

	if (got < 0)
		return -errno;
	return (size_t)got == len ? 0 : -ENOEXEC;
}

/* The file offset of virtual address v, from the PT_LOAD segment that holds it. */
static int vaddr_to_offset(const Elf64_Phdr *ph, unsigned n, uint64_t v, uint64_t *off)
{
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && v >= ph[i].p_vaddr &&
			v - ph[i].p_vaddr < ph[i].p_filesz) {
			*off = ph[i].p_offset + (v - ph[i].p_vaddr);
			return 0;
		}
	return -ENOEXEC;
}

/* A string of the dynamic string table, or NULL if at is outside it or unterminated. */
static const char *str_at(const char *tab, uint64_t size, uint64_t at)
{
	if (at >= size || !memchr(tab + at, 0, size - at))
		return NULL;
	return tab + at;
}

/* The dynamic section's names: needed libraries and run path. */
static int read_dynamic(int fd, const Elf64_Phdr *ph, unsigned nph, const Elf64_Phdr *dyn,
	struct elf_deps *d)
{
	uint64_t strtab = 0, strsz = 0, off, ndyn = dyn->p_filesz / sizeof(Elf64_Dyn);
	Elf64_Dyn *ents = NULL;
	char *tab = NULL;
	int ret = -ENOEXEC;

	if (dyn->p_filesz > MAX_DYN_BYTES || !(ents = malloc(dyn->p_filesz + 1)))
		goto out;
	ret = read_at(fd, ents, ndyn * sizeof(Elf64_Dyn), dyn->p_offset);
	for (uint64_t i = 0; !ret && i < ndyn && ents[i].d_tag != DT_NULL; i++) {
		if (ents[i].d_tag == DT_STRTAB)
			strtab = ents[i].d_un.d_ptr;
		else if (ents[i].d_tag == DT_STRSZ)
			strsz = ents[i].d_un.d_val;
	}
	if (ret || !strtab || !strsz || strsz > MAX_STRTAB_BYTES ||
		vaddr_to_offset(ph, nph, strtab, &off) || !(tab = malloc(strsz))) {
		ret = ret ? ret : -ENOEXEC;
		goto out;
	}
	ret = read_at(fd, tab, strsz, off);
	for (uint64_t i = 0; !ret && i < ndyn && ents[i].d_tag != DT_NULL; i++) {
		int64_t tag = ents[i].d_tag;
		const char *s;

		if (tag != DT_NEEDED && tag != DT_RUNPATH && tag != DT_RPATH)
			continue;
		s = str_at(tab, strsz, ents[i].d_un.d_val);
		if (!s) {
			ret = -ENOEXEC;
		} else if (tag == DT_NEEDED) {
			if (d->nr_needed == ELF_MAX_NEEDED || strlen(s) >= sizeof(d->needed[0]))
				ret = -E2BIG;
			else
				strcpy(d->needed[d->nr_needed++], s);
		} else if (tag == DT_RUNPATH || !d->runpath[0]) {
			/* DT_RUNPATH wins over the older DT_RPATH, as in the loader. */
			snprintf(d->runpath, sizeof(d->runpath), "%s", s);
		}
	}
out:
	free(tab);
	free(ents);
	return ret;
}

static int read_elf(int fd, struct elf_deps *d)
{
	Elf64_Phdr ph[MAX_PHDRS];
	const Elf64_Phdr *dyn = NULL;
	Elf64_Ehdr eh;
	int ret = read_at(fd, &eh, sizeof(eh), 0);

	if (ret)
		return ret;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
		eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_phentsize != sizeof(Elf64_Phdr) ||
		eh.e_phnum > MAX_PHDRS)
		return -ENOEXEC;
	d->machine = eh.e_machine;
	ret = read_at(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff);
	for (unsigned i = 0; !ret && i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = &ph[i];
		if (ph[i].p_type != PT_INTERP)
			continue;
		if (ph[i].p_filesz < 2 || ph[i].p_filesz > sizeof(d->interp))
			return -ENOEXEC;
		ret = read_at(fd, d->interp, ph[i].p_filesz, ph[i].p_offset);
		if (!ret && d->interp[ph[i].p_filesz - 1])
			ret = -ENOEXEC; /* not NUL-terminated */
	}
	if (!ret && dyn)
		ret = read_dynamic(fd, ph, eh.e_phnum, dyn, d);
	return ret;
}

int elf_deps_read(const char *path, struct elf_deps *d, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	memset(d, 0, sizeof(*d));
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	ret = read_elf(fd, d);
	close(fd);
	if (ret == -ENOEXEC)
		snprintf(err, errlen,
			"%s: not a 64-bit little-endian ELF file this jailer can read", path);
	else if (ret == -E2BIG)
		snprintf(err, errlen, "%s: more than %d needed libraries, or a name too long", path,
			ELF_MAX_NEEDED);
	else if (ret)
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	return ret;
}
