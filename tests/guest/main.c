/* ember test guest, user part (CPL3): ready line, serial command loop, one answer per line. */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define LINE_MAX 256
#define FAULT_ADDR 0x100000000ULL /* first byte above the mapped 4 GiB */

/* Bumped on every poll of the serial port, so the host can watch the guest run. */
volatile uint64_t guest_counter;

static struct boot_info bi;

static void boot_timer(void)
{
	*(volatile uint8_t *)LAYOUT_BOOT_TIMER = LAYOUT_BOOT_TIMER_MAGIC;
}

static void err_usage(const char *usage)
{
	put_str("ERR usage: ");
	put_str(usage);
	put_char('\n');
}

int arg_u64(const struct args *a, int i, uint64_t *out)
{
	if (parse_u64(a->v[i], out) == 0)
		return 0;
	put_str("ERR bad number: ");
	put_str(a->v[i]);
	put_char('\n');
	return -1;
}

/* Reads the <mib> argument of fill/sum/check and checks it against the work area. */
static int arg_mib(const struct args *a, uint64_t *mib)
{
	uint64_t max = (bi.work_end - bi.work_start) / MIB;

	if (arg_u64(a, 1, mib))
		return -1;
	if (*mib <= max)
		return 0;
	put_str("ERR ");
	put_str(a->v[0]);
	put_str(" mib=");
	put_dec(*mib);
	put_str(" exceeds the work area of ");
	put_dec(max);
	put_str(" MiB\n");
	return -1;
}

static void cmd_info(const struct args *a)
{
	(void)a;
	put_str("OK cpus=");
	put_dec(bi.cpus);
	put_str(" mem=");
	put_dec(bi.mem);
	put_str(" e820=");
	put_dec(bi.e820_count);
	put_str(" hv=");
	put_str(bi.hv);
	put_str(" cmdline=");
	put_str(bi.cmdline);
	put_char('\n');
}

static void cmd_fill(const struct args *a)
{
	uint64_t mib, seed, sum;

	if (arg_mib(a, &mib) || arg_u64(a, 2, &seed))
		return;
	sum = work_fill(bi.work_start, mib * MIB, seed);
	put_str("OK fill mib=");
	put_dec(mib);
	put_str(" sum=");
	put_hex16(sum);
	put_char('\n');
}

static void cmd_sum(const struct args *a)
{
	uint64_t mib;

	if (arg_mib(a, &mib))
		return;
	put_str("OK sum=");
	put_hex16(work_sum(bi.work_start, mib * MIB));
	put_char('\n');
}

static void cmd_check(const struct args *a)
{
	uint64_t mib, seed, at;

	if (arg_mib(a, &mib) || arg_u64(a, 2, &seed))
		return;
	at = work_check(bi.work_start, mib * MIB, seed);
	if (!at) {
		put_str("OK check\n");
		return;
	}
	put_str("ERR check at=");
	put_hex(at);
	put_char('\n');
}

static void cmd_counter(const struct args *a)
{
	(void)a;
	put_str("OK counter=");
	put_dec(guest_counter);
	put_str(" addr=");
	put_hex((uint64_t)&guest_counter);
	put_char('\n');
}

static void cmd_mxcsr(const struct args *a)
{
	(void)a;
	put_str("OK mxcsr entry=");
	put_hex(boot_mxcsr[0]);
	put_str(" probe=");
	put_hex(boot_mxcsr[1]);
	put_char('\n');
}

/* One CPUID leaf as this vCPU sees it, to check what the VMM configured (smt, templates). */
static void cmd_cpuid(const struct args *a)
{
	uint64_t leaf, sub;
	uint32_t r[4];
	static const char *const names[4] = { " eax=", " ebx=", " ecx=", " edx=" };

	if (arg_u64(a, 1, &leaf) || arg_u64(a, 2, &sub))
		return;
	/* int3 enters the kernel part, which runs cpuid at CPL0 (see entry.S). */
	__asm__ volatile("int3"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"((uint32_t)leaf), "c"((uint32_t)sub)
			 : "memory");
	put_str("OK cpuid");
	for (int i = 0; i < 4; i++) {
		put_str(names[i]);
		put_hex(r[i]);
	}
	put_char('\n');
}

static void cmd_touch(const struct args *a)
{
	uint64_t pages, max = (bi.work_end - bi.work_start) / PAGE_SIZE, tsc;

	if (arg_u64(a, 1, &pages))
		return;
	if (pages > max) {
		put_str("ERR touch pages=");
		put_dec(pages);
		put_str(" exceeds the work area of ");
		put_dec(max);
		put_str(" pages\n");
		return;
	}
	tsc = work_touch(bi.work_start, pages);
	put_str("OK touch pages=");
	put_dec(pages);
	put_str(" tsc=");
	put_dec(tsc);
	put_char('\n');
}

/* <kib> KiB of console output, 64-byte lines: a guest that floods its serial port. A
 * page at a time with `rep outsb`: one exit to ember per page, not per byte, so a
 * mebibyte takes a moment even where exits are slow. */
static void cmd_spew(const struct args *a)
{
	static const char line[] =
		"spew: a guest that floods its console, one 64-byte line of many\n";
	static char page[4096];
	uint64_t kib;

	if (arg_u64(a, 1, &kib))
		return;
	for (unsigned i = 0; i < sizeof(page); i++)
		page[i] = line[i % (sizeof(line) - 1)];
	for (uint64_t n = 0; n < kib / 4; n++) {
		const char *p = page;
		uint64_t count = sizeof(page);
		__asm__ volatile("rep outsb"
				 : "+S"(p), "+c"(count)
				 : "d"((uint16_t)SERIAL_RBR)
				 : "memory");
	}
	put_str("OK spew kib=");
	put_dec(kib / 4 * 4);
	put_char('\n');
}

/* The same text as spew, one OUT per byte (put_char): the exits KVM finishes only on the
 * next KVM_RUN. */
static void cmd_chatter(const struct args *a)
{
	static const char line[] =
		"spew: a guest that floods its console, one 64-byte line of many\n";
	uint64_t kib;

	if (arg_u64(a, 1, &kib))
		return;
	for (uint64_t i = 0; i < kib * 1024; i++)
		put_char(line[i % (sizeof(line) - 1)]);
	put_str("OK chatter kib=");
	put_dec(kib);
	put_char('\n');
}

static void cmd_boottimer(const struct args *a)
{
	(void)a;
	boot_timer();
	put_str("OK boottimer\n");
}

static void cmd_reset(const struct args *a)
{
	(void)a;
	reset();
}

static void cmd_poweroff(const struct args *a)
{
	(void)a;
	power_off();
}

static void cmd_fault(const struct args *a)
{
	(void)a;
	*(volatile uint8_t *)FAULT_ADDR = 1; /* #PF, reported by the kernel part */
	put_str("ERR fault did not fault\n");
}

static const struct command {
	const char *name;
	int nargs; /* arguments after the name; -1: the command checks them itself */
	const char *usage;
	void (*run)(const struct args *a);
} commands[] = {
	{ "info", 0, "info", cmd_info },
	{ "fill", 2, "fill <mib> <seed>", cmd_fill },
	{ "sum", 1, "sum <mib>", cmd_sum },
	{ "check", 2, "check <mib> <seed>", cmd_check },
	{ "counter", 0, "counter", cmd_counter },
	{ "mxcsr", 0, "mxcsr", cmd_mxcsr },
	{ "touch", 1, "touch <pages>", cmd_touch },
	{ "cpuid", 2, "cpuid <leaf> <subleaf>", cmd_cpuid },
	{ "boottimer", 0, "boottimer", cmd_boottimer },
	{ "spew", 1, "spew <kib>", cmd_spew },
	{ "chatter", 1, "chatter <kib>", cmd_chatter },
	{ "reset", 0, "reset", cmd_reset },
	{ "poweroff", 0, "poweroff", cmd_poweroff },
	{ "fault", 0, "fault", cmd_fault },
	{ "virtio", 1, "virtio list", cmd_virtio },
	{ "rng", 1, "rng <bytes>", cmd_rng },
	{ "rng-flood", 2, "rng-flood <chains> <bytes>", cmd_rng_flood },
	{ "blk", -1, "blk info|use|read|write|flush|evil ...", cmd_blk },
	{ "net", -1, "net mac|send <len> <seed>|recv", cmd_net },
	{ "vsock", -1, "vsock cid|event|echo <port>|send <port> <word>", cmd_vsock },
	{ "balloon", -1, "balloon info|inflate|deflate|stats|report <pages>|evil <kind>",
		cmd_balloon },
	{ "virtio-evil", 2, "virtio-evil <loop|oob|long|jump|nested> <window>", cmd_virtio_evil },
};

/* Splits `s` in place at spaces; returns -1 if there are more than MAX_ARGS words. */
static int split(char *s, struct args *a)
{
	a->n = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			*s++ = '\0';
		if (!*s)
			return 0;
		if (a->n == MAX_ARGS)
			return -1;
		a->v[a->n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
	}
}

static void run_line(char *line)
{
	struct args a;

	/* echo answers its text byte for byte, so it bypasses word splitting */
	if (line[0] == 'e' && line[1] == 'c' && line[2] == 'h' && line[3] == 'o' &&
		(line[4] == ' ' || line[4] == '\0')) {
		put_str("OK ");
		put_str(line[4] ? line + 5 : "");
		put_char('\n');
		return;
	}
	if (split(line, &a) < 0) {
		put_str("ERR too many arguments\n");
		return;
	}
	if (a.n == 0)
		return; /* blank line: nothing to answer */
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];

		if (!str_eq(a.v[0], c->name))
			continue;
		if (c->nargs >= 0 && a.n - 1 != c->nargs)
			err_usage(c->usage);
		else
			c->run(&a);
		return;
	}
	put_str("ERR unknown command: ");
	put_str(a.v[0]);
	put_char('\n');
}

/* Does the command line hold `word` as a whole word? */
static int cmdline_has(const char *word)
{
	for (const char *s = bi.cmdline; *s; s++) {
		size_t n = 0;

		if (s != bi.cmdline && s[-1] != ' ')
			continue;
		while (word[n] && s[n] == word[n])
			n++;
		if (!word[n] && (s[n] == ' ' || s[n] == '\0'))
			return 1;
	}
	return 0;
}

/* Boot-time command-line words, handled after the ready line. */
static void run_cmdline_words(void)
{
	if (cmdline_has("boottimer"))
		boot_timer();
	if (cmdline_has("poweroff"))
		power_off();
}

void user_main(const uint8_t *zero_page)
{
	char line[LINE_MAX + 1];
	size_t len = 0;
	int too_long = 0;

	serial_init();
	boot_info_read(&bi, zero_page);
	put_str("ember-test-guest ready cpus=");
	put_dec(bi.cpus);
	put_str(" mem=");
	put_dec(bi.mem);
	put_str(" apic=");
	put_dec(bi.apic);
	put_char('\n');
	run_cmdline_words();

	for (;;) {
		char c;

		guest_counter++;
		if (!(inb(SERIAL_LSR) & LSR_DATA_READY))
			continue;
		c = (char)inb(SERIAL_RBR);
		/* A line ends at \n, \r (a raw terminal's Enter) or \r\n, whose \n then ends
		 * an empty line, and empty lines get no answer. */
		if (c != '\n' && c != '\r') {
			if (len < LINE_MAX)
				line[len++] = c;
			else
				too_long = 1;
			continue;
		}
		line[len] = '\0';
		if (too_long)
			put_str("ERR line too long\n");
		else
			run_line(line);
		len = 0;
		too_long = 0;
	}
}
