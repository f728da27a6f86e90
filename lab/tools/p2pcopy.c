/*
 * p2pcopy: the lab's own verifying peer-to-peer copy, so that the lab can
 * check what the kernel does without p2pdoctor.
 *
 *   p2pcopy ALLOCATE_FILE DEVICE [BYTES]
 *
 * ALLOCATE_FILE is /sys/bus/pci/devices/<provider>/p2pmem/allocate, DEVICE
 * the client's block device (/dev/nvmeXnY). DESTROYS DATA ON DEVICE: the lab
 * only ever passes it scratch drives backed by files on the host.
 *
 * Two directions, each checked separately (the client is the DMA master):
 *   read:  the device DMAs into p2pmem   (pread  O_DIRECT into the BAR)
 *   write: the device DMAs from p2pmem   (pwrite O_DIRECT from the BAR)
 * and the data is compared each time, because a P2P transfer can report
 * success and still not move the data (QEMU with an IOMMU, the lab's case (docs/ARCHITECTURE.md) 4).
 *
 * Output: key=value lines, last one `outcome=ok|refused|corrupt|error`.
 * Exit status 0 when the measurement itself worked, whatever the outcome.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OFFSET_A 0
#define OFFSET_B (8u << 20)

static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
	/* xorshift32: a pattern no stale buffer or zero page can imitate */
	uint32_t x = seed ? seed : 0x9e3779b9u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

static const char *verdict(ssize_t rc, size_t len, int err)
{
	if (rc == (ssize_t)len)
		return "ok";
	if (rc < 0)
		return strerror(err);
	return "short";
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ALLOCATE_FILE DEVICE [BYTES]\n", argv[0]);
		return 2;
	}
	size_t len = argc > 3 ? strtoul(argv[3], NULL, 0) : 65536;
	if (len == 0 || len % 4096 || len > OFFSET_B) {
		fprintf(stderr, "BYTES must be a non-zero multiple of 4096 below %u\n", OFFSET_B);
		return 2;
	}
	uint32_t seed = (uint32_t)getpid() * 2654435761u;

	int dev = open(argv[2], O_RDWR | O_DIRECT);
	if (dev < 0) {
		printf("error=open %s: %s\noutcome=error\n", argv[2], strerror(errno));
		return 1;
	}
	int alloc = open(argv[1], O_RDWR);
	if (alloc < 0) {
		printf("error=open %s: %s\noutcome=error\n", argv[1], strerror(errno));
		return 1;
	}
	/* MAP_SHARED at offset 0: the only mapping the allocate file accepts */
	unsigned char *p2p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, alloc, 0);
	if (p2p == MAP_FAILED) {
		printf("error=mmap %s: %s\noutcome=error\n", argv[1], strerror(errno));
		return 1;
	}
	unsigned char *host, *expect, *check;
	if (posix_memalign((void **)&host, 4096, len) || posix_memalign((void **)&expect, 4096, len) ||
	    posix_memalign((void **)&check, 4096, len)) {
		printf("error=out of memory\noutcome=error\n");
		return 1;
	}

	/* read direction: pattern A on the disk, zeroes in p2pmem, DMA disk -> p2pmem */
	fill(host, len, seed);
	memcpy(expect, host, len);
	if (pwrite(dev, host, len, OFFSET_A) != (ssize_t)len || fsync(dev)) {
		printf("error=seeding %s: %s\noutcome=error\n", argv[2], strerror(errno));
		return 1;
	}
	memset(p2p, 0, len);
	errno = 0;
	ssize_t rrc = pread(dev, p2p, len, OFFSET_A);
	int rerr = errno;
	int rmatch = rrc == (ssize_t)len && memcmp(p2p, expect, len) == 0;
	printf("read=%s\n", verdict(rrc, len, rerr));
	printf("read_errno=%d\n", rrc < 0 ? rerr : 0);
	printf("read_data=%s\n", rrc == (ssize_t)len ? (rmatch ? "match" : "mismatch") : "-");

	/* write direction: zeroes on the disk at B, pattern B in p2pmem, DMA p2pmem -> disk */
	memset(host, 0, len);
	if (pwrite(dev, host, len, OFFSET_B) != (ssize_t)len || fsync(dev)) {
		printf("error=clearing %s: %s\noutcome=error\n", argv[2], strerror(errno));
		return 1;
	}
	fill(expect, len, seed ^ 0x5a5a5a5au);
	memcpy(p2p, expect, len);
	errno = 0;
	ssize_t wrc = pwrite(dev, p2p, len, OFFSET_B);
	int werr = errno;
	fsync(dev);
	int wmatch = 0;
	if (wrc == (ssize_t)len) {
		if (pread(dev, check, len, OFFSET_B) != (ssize_t)len) {
			printf("error=reading back %s: %s\noutcome=error\n", argv[2], strerror(errno));
			return 1;
		}
		wmatch = memcmp(check, expect, len) == 0;
	}
	printf("write=%s\n", verdict(wrc, len, werr));
	printf("write_errno=%d\n", wrc < 0 ? werr : 0);
	printf("write_data=%s\n", wrc == (ssize_t)len ? (wmatch ? "match" : "mismatch") : "-");

	const char *outcome;
	if (rrc < 0 || wrc < 0)
		outcome = (rrc >= 0 && !rmatch) || (wrc >= 0 && !wmatch) ? "corrupt" : "refused";
	else if (rrc != (ssize_t)len || wrc != (ssize_t)len)
		outcome = "error";
	else
		outcome = rmatch && wmatch ? "ok" : "corrupt";
	printf("outcome=%s\n", outcome);
	return 0;
}
