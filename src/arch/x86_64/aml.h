/* Private to src/arch/x86_64: a small encoder for AML (ACPI 6.3, chapter 20) and resource
 * descriptors (section 6.4), enough for ember's DSDT. */
#ifndef EMBER_ARCH_X86_64_AML_H
#define EMBER_ARCH_X86_64_AML_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes the DSDT writes directly (ACPI 6.3, 20.2.5). */
#define AML_ARG0 0x68
#define AML_LEQUAL 0x93
#define AML_RETURN 0xa4

/* Output into a caller's buffer. Errors are sticky: the first one is kept in `err`, later
 * calls do nothing, and the caller checks once at the end. */
struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err; /* 0, -ENOSPC (buffer full) or -EINVAL (malformed name or id) */
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/* Constructs with a PkgLength: each returns a mark that aml_close() takes once the
 * contents are written; they nest. The PkgLength takes 1..4 bytes as the contents need. */
size_t aml_scope(struct aml *a, const char *path);                  /* Scope (path) */
size_t aml_device(struct aml *a, const char *path);                 /* Device (path) */
size_t aml_method(struct aml *a, const char *path, unsigned nargs); /* NotSerialized */
size_t aml_if(struct aml *a);                     /* then the predicate, then the body */
size_t aml_package(struct aml *a, uint8_t count); /* then `count` data objects */
void aml_close(struct aml *a, size_t mark);

/* A NameString: optional '\' root prefix and '^' parent prefixes, then 4-character
 * segments separated by '.', each [A-Z_][A-Z0-9_]{3} ("\\_SB_.VGEN"). */
void aml_namestring(struct aml *a, const char *path);
/* Name (seg, ...): the caller writes the data object that follows. */
void aml_name(struct aml *a, const char *seg);
/* The shortest integer encoding (Zero, One, Byte/Word/DWord/QWordConst). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISAID ("PNP0501"): 3 upper-case letters and 4 hex digits, compressed to a DWordConst. */
void aml_eisaid(struct aml *a, const char *id);
/* Buffer () { bytes }: a resource template built with the aml_res_* calls below. */
void aml_buffer(struct aml *a, const uint8_t *bytes, size_t n);
/* Notify (path, value) */
void aml_notify(struct aml *a, const char *path, uint8_t value);

/* Resource descriptors, written into a struct aml used as scratch for aml_buffer(). */
void aml_res_io(struct aml *r, uint16_t port, uint8_t len); /* IO (Decode16, fixed) */
void aml_res_irq(struct aml *r, unsigned isa_irq);          /* IRQNoFlags: edge, high, exclusive */
void aml_res_mem32(struct aml *r, uint32_t base, uint32_t size); /* Memory32Fixed, RW */
/* Extended Interrupt: ResourceConsumer, Edge, ActiveHigh, Exclusive, one GSI. */
void aml_res_ext_irq(struct aml *r, uint32_t gsi);
void aml_res_end(struct aml *r); /* End Tag, checksum 0 ("treat as valid") */

#endif
