/* virtio-vsock wire format, credit accounting and the CONNECT line: pure functions. */
#include "ember/vsock.h"

#include <errno.h>
#include <string.h>

#include "ember/byteorder.h"

/* Offsets in struct virtio_vsock_hdr (5.10.6). */
enum {
	O_SRC_CID = 0,
	O_DST_CID = 8,
	O_SRC_PORT = 16,
	O_DST_PORT = 20,
	O_LEN = 24,
	O_TYPE = 28,
	O_OP = 30,
	O_FLAGS = 32,
	O_BUF_ALLOC = 36,
	O_FWD_CNT = 40,
};

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_SIZE])
{
	h->src_cid = get_le64(raw + O_SRC_CID);
	h->dst_cid = get_le64(raw + O_DST_CID);
	h->src_port = get_le32(raw + O_SRC_PORT);
	h->dst_port = get_le32(raw + O_DST_PORT);
	h->len = get_le32(raw + O_LEN);
	h->type = get_le16(raw + O_TYPE);
	h->op = get_le16(raw + O_OP);
	h->flags = get_le32(raw + O_FLAGS);
	h->buf_alloc = get_le32(raw + O_BUF_ALLOC);
	h->fwd_cnt = get_le32(raw + O_FWD_CNT);
}

void vsock_hdr_encode(uint8_t raw[VSOCK_HDR_SIZE], const struct vsock_hdr *h)
{
	put_le64(raw + O_SRC_CID, h->src_cid);
	put_le64(raw + O_DST_CID, h->dst_cid);
	put_le32(raw + O_SRC_PORT, h->src_port);
	put_le32(raw + O_DST_PORT, h->dst_port);
	put_le32(raw + O_LEN, h->len);
	put_le16(raw + O_TYPE, h->type);
	put_le16(raw + O_OP, h->op);
	put_le32(raw + O_FLAGS, h->flags);
	put_le32(raw + O_BUF_ALLOC, h->buf_alloc);
	put_le32(raw + O_FWD_CNT, h->fwd_cnt);
}

int vsock_hdr_check(const struct vsock_hdr *h, uint64_t guest_cid, uint64_t avail, const char **why)
{
	if (h->src_cid != guest_cid)
		*why = "not from the guest's cid";
	else if (h->type != VSOCK_TYPE_STREAM)
		*why = "type is not stream";
	else if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		*why = "unknown op";
	else if (h->len > avail)
		*why = "payload longer than the chain";
	else if (h->len > VSOCK_MAX_PAYLOAD)
		*why = "payload longer than 64 KiB";
	else if (h->op != VSOCK_OP_RW && h->len)
		*why = "payload on a control packet";
	else if (h->op == VSOCK_OP_SHUTDOWN &&
		(h->flags & ~(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)))
		*why = "unknown shutdown flags";
	else
		return 0;
	return -EINVAL;
}

void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc)
{
	memset(c, 0, sizeof(*c));
	c->buf_alloc = buf_alloc;
}

void vsock_credit_peer(struct vsock_credit *c, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	c->peer_buf_alloc = buf_alloc;
	c->peer_fwd_cnt = fwd_cnt;
}

uint32_t vsock_credit_peer_free(const struct vsock_credit *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	/* A peer that claims to have forwarded more than was sent, or whose buffer shrank
	 * below what is in flight, gets nothing until its numbers make sense again. */
	if (in_flight > c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

int vsock_credit_rx(struct vsock_credit *c, uint32_t len)
{
	uint32_t used = c->rx_cnt - c->fwd_cnt;

	if (used > c->buf_alloc || len > c->buf_alloc - used)
		return -ENOSPC;
	c->rx_cnt += len;
	return 0;
}

uint32_t vsock_credit_rx_pending(const struct vsock_credit *c)
{
	return c->rx_cnt - c->fwd_cnt;
}

bool vsock_credit_update_due(const struct vsock_credit *c)
{
	uint32_t untold = c->fwd_cnt - c->fwd_cnt_sent;

	if (untold == 0)
		return false;
	return untold >= c->buf_alloc / 4 || c->rx_cnt == c->fwd_cnt;
}

/* Whether buf[from, to) can be (part of) the port: digits, at most 10 of them. */
static bool digits(const char *buf, size_t from, size_t to)
{
	if (to > from + 10)
		return false;
	for (size_t i = from; i < to; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return false;
	return true;
}

int vsock_parse_connect(const char *buf, size_t len, uint32_t *port)
{
	static const char word[] = "CONNECT ";
	const size_t wl = sizeof(word) - 1;
	size_t scan = len < VSOCK_CONNECT_LINE_MAX ? len : VSOCK_CONNECT_LINE_MAX;
	const char *nl = memchr(buf, '\n', scan);
	size_t end = nl ? (size_t)(nl - buf) : scan, i;
	uint64_t v = 0;

	/* Whatever has arrived must still be a prefix of a valid line, so that a client
	 * sending garbage is refused at once rather than at the length limit. */
	for (i = 0; i < wl && i < end; i++)
		if (buf[i] != word[i])
			return -EINVAL;
	if (end > wl && buf[end - 1] == '\r' && (nl || end == len))
		end--;
	if (end > wl && !digits(buf, wl, end))
		return -EINVAL;
	if (!nl)
		return len >= VSOCK_CONNECT_LINE_MAX ? -EINVAL : 0;
	if (end <= wl)
		return -EINVAL;
	for (i = wl; i < end; i++)
		v = v * 10 + (uint64_t)(buf[i] - '0');
	if (v > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)v;
	return (int)(nl - buf) + 1;
}
