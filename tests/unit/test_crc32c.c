/* SPDX-License-Identifier: MIT */
/*
 * test_crc32c - known answers for both CRC32C implementations (RFC 3720,
 * B.4), and the instruction against the table on every length and
 * alignment up to 300 bytes and on chained calls.  When the CPU lacks
 * SSE4.2 the instruction half is reported as not run (the table half
 * still runs).
 *
 * With --bench it prints MB/s of each implementation over 256 B, 4 KiB
 * (a metadata block) and 1 MiB (median of 7 rounds of 0.1 s); make check
 * never runs that.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "test_helpers.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void known_answers(const char *name, crc_fn f)
{
	unsigned char b[48];
	uint32_t c;

	memset(b, 0, 32);
	CHECK_EQ(f(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, 32);
	CHECK_EQ(f(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	CHECK_EQ(f(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	CHECK_EQ(f(0, b, 32), 0x113FDB5Cu);
	/* the usual check value: "123456789" */
	CHECK_EQ(f(0, "123456789", 9), 0xE3069283u);
	CHECK_EQ(f(0, b, 0), 0u);
	/* the same vectors off an 8-byte boundary, and split in two calls */
	for (int i = 0; i < 32; i++)
		b[i + 3] = (unsigned char)i;
	CHECK_EQ(f(0, b + 3, 32), 0x46DD794Eu);
	c = f(0, b + 3, 13);
	CHECK_EQ(f(c, b + 16, 19), 0x46DD794Eu);
	printf("%s: known answers checked\n", name);
}

static double mbps(crc_fn f, const unsigned char *buf, size_t len)
{
	double r[7];
	volatile uint32_t sink = 0;

	for (int k = 0; k < 7; k++) {
		uint64_t t0 = dx_now_ns();
		int n = 0;

		do {
			sink ^= f(0, buf, len);
			n++;
		} while (dx_now_ns() - t0 < 100000000ull);
		r[k] = (double)n * (double)len / ((double)(dx_now_ns() - t0) / 1e9) / 1e6;
	}
	for (int i = 1; i < 7; i++)
		for (int j = i; j > 0 && r[j - 1] > r[j]; j--) {
			double t = r[j];

			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	(void)sink;
	return r[3];
}

int main(int argc, char **argv)
{
	static unsigned char buf[1 << 20];
	bool hw = dx_crc32c_hw_available();

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		static const size_t sizes[] = { 256, 4096, sizeof(buf) };

		for (int i = 0; i < 3; i++) {
			printf("crc32c over %7zu bytes, median of 7: table %5.0f MB/s", sizes[i],
			       mbps(dx_crc32c_sw, buf, sizes[i]));
			if (hw)
				printf(", sse4.2 %5.0f MB/s", mbps(dx_crc32c_hw, buf, sizes[i]));
			putchar('\n');
		}
		printf("dx_crc32c uses %s\n", dx_crc32c_impl());
		return 0;
	}

	known_answers("table", dx_crc32c_sw);
	known_answers("dx_crc32c", dx_crc32c);
	if (!hw) {
		printf("sse4.2: this CPU has no crc32 instruction, not tested\n");
		return t_exit("test_crc32c");
	}
	known_answers("sse4.2", dx_crc32c_hw);
	CHECK(strcmp(dx_crc32c_impl(), "sse4.2") == 0 || getenv("UDAX_CRC32C_SW"));
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 300; len++)
			CHECK_EQ(dx_crc32c_hw(0x12345678u, buf + off, len),
				 dx_crc32c_sw(0x12345678u, buf + off, len));
	CHECK_EQ(dx_crc32c_hw(0, buf, sizeof(buf)), dx_crc32c_sw(0, buf, sizeof(buf)));
	/* negative control: the comparison sees a one-bit difference */
	{
		uint32_t a = dx_crc32c_hw(0, buf, 4096);

		buf[2048] ^= 0x10;
		CHECK(dx_crc32c_sw(0, buf, 4096) != a);
		buf[2048] ^= 0x10;
	}
	return t_exit("test_crc32c");
}
