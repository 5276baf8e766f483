/* MMDS V2 session tokens: 32 bytes from getrandom(2), kept with their expiry time. */
#include "ember/mmds.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"

static void encode(const uint8_t *b, size_t n, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | b[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alphabet[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = alphabet[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* The slot a new token takes: a free or expired one, else the one that expires first. */
static struct mmds_token *slot_for_new(struct mmds *m, uint64_t now_ns)
{
	struct mmds_token *best = &m->tokens[0];

	for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct mmds_token *t = &m->tokens[i];
		if (t->expiry_ns <= now_ns)
			return t;
		if (t->expiry_ns < best->expiry_ns)
			best = t;
	}
	return best;
}

int mmds_token_new(struct mmds *m, unsigned ttl_s, uint64_t now_ns, char *out)
{
	uint8_t raw[32];
	size_t got = 0;
	struct mmds_token *t;

	if (ttl_s < 1 || ttl_s > MMDS_TTL_MAX)
		return -EINVAL;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	t = slot_for_new(m, now_ns);
	encode(raw, sizeof(raw), t->text);
	t->expiry_ns = now_ns + (uint64_t)ttl_s * 1000000000ull;
	memcpy(out, t->text, MMDS_TOKEN_LEN + 1);
	return 0;
}

/* Compare without an early exit, so the time taken says nothing about the token. */
static bool same(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

bool mmds_token_valid(struct mmds *m, const char *tok, size_t len, uint64_t now_ns)
{
	bool ok = false;

	if (len != MMDS_TOKEN_LEN)
		return false;
	for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct mmds_token *t = &m->tokens[i];
		if (t->expiry_ns == 0)
			continue;
		if (t->expiry_ns <= now_ns) {
			t->expiry_ns = 0; /* forget it */
			continue;
		}
		ok |= same(t->text, tok, MMDS_TOKEN_LEN);
	}
	return ok;
}
