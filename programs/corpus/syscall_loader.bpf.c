// SPDX-License-Identifier: GPL-2.0
/* syscall_loader: the light-skeleton pattern (bpftool gen skeleton -L): a BPF_PROG_TYPE_SYSCALL
 * program that itself calls bpf(2) through bpf_sys_bpf to create a map and update an element,
 * then closes the fd with bpf_sys_close. It returns a bit per step that succeeded (fd numbers
 * differ between runs, so they are not returned). */
#include "corpus.h"

struct create_attr {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
};

struct update_attr {
	__u32 map_fd;
	__u32 pad;
	__u64 key;
	__u64 value;
	__u64 flags;
};

SEC("syscall")
int lskel_load(void *ctx)
{
	struct create_attr cattr = {
		.map_type = BPF_MAP_TYPE_ARRAY,
		.key_size = 4,
		.value_size = 8,
		.max_entries = 4,
	};
	struct update_attr uattr = {};
	__u32 key = 1;
	__u64 value = 0xfeed;
	int fd, ret = 0;

	fd = bpf_sys_bpf(BPF_MAP_CREATE, &cattr, sizeof(cattr));
	if (fd < 0)
		return fd;
	ret |= 1;
	uattr.map_fd = fd;
	uattr.key = (__u64)(long)&key;
	uattr.value = (__u64)(long)&value;
	if (bpf_sys_bpf(BPF_MAP_UPDATE_ELEM, &uattr, sizeof(uattr)) == 0)
		ret |= 2;
	if (bpf_sys_close(fd) == 0)
		ret |= 4;
	return ret;
}

char _license[] SEC("license") = "GPL";
