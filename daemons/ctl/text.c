/* SPDX-License-Identifier: MIT */
/*
 * text.c -- how mmapqctl prints bytes a queue holds: as text (control bytes
 * and bytes that are not UTF-8 escaped), as JSON strings (only valid
 * UTF-8), as hex, or framed as the producer reads its input; and sizes in
 * bytes for people.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "ctl.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_seq((const unsigned char *)s + i, len - i)))
			return false;
	return true;
}

/* s must be valid UTF-8 (utf8_valid); it is written as is, escaped only
 * where JSON requires it. */
void json_string(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void json_hex(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", (unsigned char)s[i]);
	fputc('"', f);
}

void text_bytes(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_seq(p + i, len - i);
		/* U+0080..U+009F: C1 controls, which some terminals obey */
		if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)
			n = 0;
		if (n > 1) {
			fwrite(p + i, 1, n, f);
		} else if (n == 1 && p[i] == '\\') {
			fputs("\\\\", f);
		} else if (n == 1 && p[i] >= 0x20 && p[i] != 0x7f) {
			fputc(p[i], f);
		} else {
			fprintf(f, "\\x%02x", p[i]);
			n = 1;
		}
	}
}

const char *human_bytes(char *buf, size_t size, uint64_t n)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = -1;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%" PRIu64 " B", n);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, size, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, size, "%.1f %s", v, unit[u]);
	return buf;
}

size_t frame_prefix(uint32_t format, size_t len, unsigned char out[4])
{
	if (format != MMAPQ_FORMAT_BINARY)
		return 0;
	out[0] = (unsigned char)(len >> 24);
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
	return 4;
}

const char *frame_suffix(uint32_t format, const char *s, size_t len)
{
	if (format == MMAPQ_FORMAT_BINARY)
		return "";
	/* the parser drops one '\r' before a '\n' (CRLF): a line that ends in
	 * one keeps it with a second */
	if (format == MMAPQ_FORMAT_LINE && len && s[len - 1] == '\r')
		return "\r\n";
	return "\n";
}

void iso_time(char *buf, size_t size, uint64_t usec)
{
	time_t t = (time_t)(usec / 1000000u);
	struct tm tm;

	if (!usec || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "never");
}
