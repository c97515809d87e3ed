//! Opening what a tool reads and writes, with the messages scripts grep for, and a look at
//! what a device holds before a writer writes over it.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::report::file_error;
use crate::dm::IN_USE;
use crate::identify::{identify, probe, Content, Format, PROBE_BYTES};
use crate::pdata::io::{same_file, ByteIo, FileIo, OpenMode, LOCKED};

/// What to do about a device someone holds, for a writer.
const WRITE_BUSY: &str = "refusing to write to it";

/// Opens a file or block device the way every tool does, with one wording for each way it
/// can fail: missing, not a file or device, no permission, held by someone else (`busy`
/// says what to do about it). `role` is "input" or "output".
pub fn open_device(path: &Path, mode: OpenMode, role: &str, busy: &str) -> anyhow::Result<FileIo> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => permission_denied(path, false),
        io::ErrorKind::NotFound => file_error(
            path,
            format!("Couldn't find {role} file '{}'", path.display()),
        ),
        // A name too long, a file where a directory should be: the system's words.
        _ => file_error(path, format!("cannot open: {e}")),
    })?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        return Err(not_a_file(path, ft.is_dir()));
    }
    FileIo::open(path, mode).map_err(|e| match e.raw_os_error() {
        _ if e.kind() == io::ErrorKind::WouldBlock => file_error(path, LOCKED),
        Some(libc::EBUSY) => file_error(path, format!("{IN_USE}; {busy}")),
        Some(libc::EACCES | libc::EPERM) => permission_denied(path, ft.is_block_device()),
        _ => file_error(path, format!("cannot open: {e}")),
    })
}

/// What every tool says of a path that is neither a regular file nor a block device where
/// one is needed: thin-provisioning-tools' words first (scripts grep them), then what it is
/// when it is a directory, the common mistake.
pub fn not_a_file(path: &Path, is_dir: bool) -> anyhow::Error {
    let words = format!("Not a block device or regular file '{}'", path.display());
    match is_dir {
        true => file_error(path, format!("{words}: is a directory")),
        false => file_error(path, format!("{words}.")),
    }
}

/// "Permission denied" in the system's words, which scripts grep for; the hint that devices
/// need root only where it is true: a block device, opened by someone who is not root.
fn permission_denied(path: &Path, block_device: bool) -> anyhow::Error {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let what = if block_device && !root {
        "Permission denied; block devices need root"
    } else {
        "Permission denied"
    };
    file_error(path, what)
}

/// Pipe buffer asked for on a pipe input: with 1 MiB instead of the default 64 KiB, XML
/// crosses the pipe with a sixteenth of the wake-ups (about a fifth faster from `cat`).
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Asks for a larger buffer when `fd` is a pipe; anything else, or a refusal (beyond
/// /proc/sys/fs/pipe-max-size), leaves it as it is.
fn widen_pipe(fd: &impl AsRawFd) {
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours; on a descriptor that
    // is not a pipe it fails with EBADF or EINVAL, which changes nothing.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

/// Opens a text input read once from start to end: a file, a pipe, a FIFO, or `-` for stdin,
/// which should hold the XML `xml_of` writes. Returns its length too when it is a regular
/// file (for a progress bar).
pub fn open_text_input(
    path: &Path,
    xml_of: &str,
) -> anyhow::Result<(Box<dyn io::Read + Send>, Option<u64>)> {
    if path.as_os_str() == "-" {
        let stdin = io::stdin();
        widen_pipe(&stdin);
        return Ok((refuse_binary(path, xml_of, Box::new(stdin))?, None));
    }
    let f = std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => file_error(
            path,
            format!("Couldn't find input file '{}'", path.display()),
        ),
        io::ErrorKind::PermissionDenied => permission_denied(path, false),
        _ => file_error(path, format!("cannot open: {e}")),
    })?;
    let meta = f
        .metadata()
        .map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let ft = meta.file_type();
    if !(ft.is_file() || ft.is_fifo() || ft.is_char_device() || ft.is_block_device()) {
        return Err(not_a_file(path, ft.is_dir()));
    }
    if ft.is_fifo() || ft.is_char_device() {
        widen_pipe(&f);
    }
    let len = ft.is_file().then_some(meta.len());
    Ok((refuse_binary(path, xml_of, Box::new(f))?, len))
}

/// The compression a text input's first bytes show, if they show one.
fn compressed(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 4] = [
        (&[0x1f, 0x8b], "gzip"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (b"BZh", "bzip2"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, kind)| kind)
}

/// Looks at the start of a text input before the XML reader does: binary metadata, a disk
/// log or a filesystem given where XML was expected is said to be what it is, instead of
/// "unexpected text" at line 1, with the tool whose XML is expected (`xml_of`). The bytes
/// looked at are handed on first.
fn refuse_binary(
    path: &Path,
    xml_of: &str,
    mut input: Box<dyn io::Read + Send>,
) -> anyhow::Result<Box<dyn io::Read + Send>> {
    let mut head = Vec::with_capacity(crate::cast::index(PROBE_BYTES));
    (&mut input)
        .take(PROBE_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if let Some(kind) = compressed(&head) {
        let cat = match kind {
            "gzip" => "zcat",
            "xz" => "xzcat",
            "zstd" => "zstdcat",
            _ => "bzcat",
        };
        let tool = xml_of.replace("_dump", "_restore");
        let what = format!(
            "holds {kind}-compressed data, not XML: decompress it into the tool, e.g. \
             {cat} FILE | {tool} -i - …"
        );
        return Err(file_error(path, what));
    }
    // A document that starts as XML is left to the XML reader: some signatures (minix's)
    // are printable bytes that a hand-edited document could hold where they are looked for.
    let text = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&head);
    let starts_as_xml = text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    match identify(&head) {
        _ if head.is_empty() || starts_as_xml => {}
        Content::Unknown => {}
        found => {
            let what = format!("holds {found}, not XML: give the XML {xml_of} writes");
            return Err(file_error(path, what));
        }
    }
    Ok(Box::new(io::Cursor::new(head).chain(input)))
}

/// Opens the device or file a writer writes, with the messages scripts grep for: it must
/// already exist (else the error says the size it needs: `need` is called to tell), be a
/// regular file or a block device, not be
/// `input`, and not be held open by anyone else (block devices are opened with `O_EXCL`).
pub fn open_writer_output(
    path: &Path,
    input: &Path,
    need: &mut dyn FnMut() -> String,
) -> anyhow::Result<FileIo> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let missing = format!("Couldn't find output file '{}'", path.display());
            return Err(file_error(path, format!("{missing}; {}", need())));
        }
        Ok(m) if m.is_dir() => return Err(not_a_file(path, true)),
        Ok(_) => refuse_input_as_output(path, input)?,
        Err(_) => {}
    }
    open_device(path, OpenMode::Write, "output", WRITE_BUSY)
}

/// What a writer of `format` does not do without `--force`.
pub fn refusing(format: &Format) -> String {
    format!(
        "refusing to write {} over it (check the device name; --force writes anyway)",
        format.name
    )
}

/// The refusal of a target that holds `found`.
fn refusal(path: &Path, found: &Content, format: &Format) -> anyhow::Error {
    file_error(path, format!("holds {found}; {}", refusing(format)))
}

/// Looks at what a writer's target holds and refuses it, naming what it found, unless
/// `allowed` says a writer of `format` may write there (`Content::replaceable_by` for one that
/// writes the whole format anew, `Content::repairable_in_place_by` for one that repairs it in
/// place). Returns what it found. With `--force` a tool does not call it.
pub fn refuse_unless(
    io: &dyn ByteIo,
    path: &Path,
    format: &Format,
    allowed: fn(&Content, &Format) -> bool,
) -> anyhow::Result<Content> {
    let found = probe(io).map_err(|e| file_error(path, format!("reading what it holds: {e}")))?;
    if allowed(&found, format) {
        return Ok(found);
    }
    Err(refusal(path, &found, format))
}

/// What to tell a reader of `format` about a device that does not hold it, when the device
/// holds something we can name.
pub fn advice(io: &dyn ByteIo, format: &Format) -> Option<String> {
    probe(io).ok()?.advice(format)
}

/// Refuses an output that is the input (the same file, a hard link, a symlink, or another
/// node of the same block device).
pub fn refuse_input_as_output(output: &Path, input: &Path) -> anyhow::Result<()> {
    if same_file(output, input) {
        return Err(file_error(
            output,
            format!(
                "is the input {}; write the output somewhere else",
                input.display()
            ),
        ));
    }
    Ok(())
}

/// Whether a file starts like XML (after optional white space): `<` and then a name, `?` or
/// `!`.
pub fn looks_like_xml(head: &[u8]) -> bool {
    let mut bytes = head.iter().skip_while(|b| b.is_ascii_whitespace());
    bytes.next() == Some(&b'<')
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'?' || *b == b'!')
}
