//! Writing to standard output without panicking: `println!` panics when
//! the reader has gone (`pki-admin cert list | head`), which would print a
//! panic and exit 101 after the command's work was done. [`outln!`] and
//! [`out!`] write through [`write`], which ends the process quietly with
//! exit 0 on a closed pipe (the reader asked for no more), and with exit 1
//! and a message on any other output error.

use std::io::Write;

/// Writes formatted text to stdout (see the module doc).
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        exit_on(&e);
    }
}

/// Ends the process for an output error: quietly on a closed pipe.
pub fn exit_on(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1);
}

/// Is this error (or one of its causes) a closed output pipe?
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}
