fn main() {
    std::process::exit(p2pdoctor::cli::main());
}
