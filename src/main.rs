fn main() {
    tune_malloc();
    std::process::exit(p2pdoctor::cli::main());
}

/// glibc gives each thread's arena a heap of 128 KiB plus M_TOP_PAD and
/// then grows it a page, one mprotect call, at a time. The scan's threads
/// keep about 4 KiB per PCI function (its config space): thousands of
/// mprotect calls on a large server. A larger first heap (address space
/// only; untouched pages cost nothing) avoids them.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 32 << 20);
    }
}
