//! On-disk structures declared once: `layout!` turns a table of `field: type @ offset` into
//! the struct and the code that reads and writes it, so that an offset cannot say one thing
//! when decoding and another when encoding.

use byteorder::{ByteOrder, LittleEndian as LE};

/// A value stored little-endian in a fixed number of bytes: what a `layout!` field can be.
pub trait Field: Sized {
    /// Bytes it takes on disk.
    const SIZE: usize;

    /// Decodes it from exactly [`Field::SIZE`] bytes.
    fn read(b: &[u8]) -> Self;

    /// Encodes it into exactly [`Field::SIZE`] bytes.
    fn write(&self, b: &mut [u8]);
}

/// The integers, each by byteorder's little-endian read and write of its width.
macro_rules! le_integer {
    ($($t:ty: $read:ident, $write:ident;)*) => {
        $(
            impl Field for $t {
                const SIZE: usize = std::mem::size_of::<$t>();

                #[inline]
                fn read(b: &[u8]) -> $t {
                    LE::$read(b)
                }

                #[inline]
                fn write(&self, b: &mut [u8]) {
                    LE::$write(b, *self);
                }
            }
        )*
    };
}

le_integer! {
    u32: read_u32, write_u32;
    u64: read_u64, write_u64;
}

impl<const N: usize> Field for [u8; N] {
    const SIZE: usize = N;

    #[inline]
    fn read(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        a
    }

    #[inline]
    fn write(&self, b: &mut [u8]) {
        b.copy_from_slice(self);
    }
}

/// Declares an on-disk structure from one table of its fields and their byte offsets:
///
/// ```ignore
/// layout! {
///     /// Doc comment and derives, as on any struct.
///     #[derive(Debug)]
///     pub struct Example {
///         /// Each field: its doc, visibility, name, type, and offset in the packed bytes.
///         pub count: u32 @ 4,
///         pub root: u64 @ 8,
///     }
/// }
/// ```
///
/// Besides the struct it generates, private to the module:
/// - `unpack_fields(&[u8]) -> Self`, reading every field at its offset;
/// - `pack_fields(&self, &mut [u8])`, writing every field at its offset and no other byte;
/// - `FIELDS_END`, the byte just past the last field.
///
/// The struct's own `unpack` and `pack` call these and add what is particular to it
/// (padding, an unused tail, a length check), with their own documentation.
///
/// A type is a single token or a bracketed array (`u64`, `SmRoot`, `[u8; 16]`) implementing
/// [`Field`]; a struct declared here becomes one with [`field_via_pack!`]. Fields are listed
/// in offset order; a table whose fields overlap or go backwards does not compile.
macro_rules! layout {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:tt @ $off:expr
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[$fmeta])*
                $fvis $field: $ty,
            )*
        }

        impl $name {
            // Each field starts at or after the end of the one before.
            const FIELDS_END: usize = {
                let mut end = 0;
                $(
                    assert!($off >= end, "layout fields overlap or are out of order");
                    end = $off + <$ty as $crate::pdata::layout::Field>::SIZE;
                )*
                end
            };

            #[inline]
            fn unpack_fields(b: &[u8]) -> $name {
                $name {
                    $(
                        $field: <$ty as $crate::pdata::layout::Field>::read(
                            &b[$off..$off + <$ty as $crate::pdata::layout::Field>::SIZE],
                        ),
                    )*
                }
            }

            #[inline]
            fn pack_fields(&self, b: &mut [u8]) {
                $(
                    $crate::pdata::layout::Field::write(
                        &self.$field,
                        &mut b[$off..$off + <$ty as $crate::pdata::layout::Field>::SIZE],
                    );
                )*
            }
        }

        // An associated constant is evaluated only where used: this checks every table when
        // compiled, whether or not its structure needs to know where its fields end.
        const _: usize = $name::FIELDS_END;
    };
}
pub(crate) use layout;

/// Makes a structure with its own `unpack` and `pack` a [`Field`] of `size` bytes, so that
/// another [`layout!`] can hold it; nested, it is read and written by those
/// two, with whatever they add to its fields.
macro_rules! field_via_pack {
    ($name:ident, $size:expr) => {
        impl $crate::pdata::layout::Field for $name {
            const SIZE: usize = $size;

            #[inline]
            fn read(b: &[u8]) -> $name {
                $name::unpack(b)
            }

            #[inline]
            fn write(&self, b: &mut [u8]) {
                self.pack(b);
            }
        }
    };
}
pub(crate) use field_via_pack;

/// Offset of `magic`, where every persistent-data superblock has its own.
pub const MAGIC_OFFSET: usize = 32;

/// [`layout!`] for a format's superblock: the fields every persistent-data superblock
/// starts with after its checksum (flags, where it says it lives, a UUID, the format's magic
/// and version, at the same offsets in every format), then the format's own.
macro_rules! superblock_layout {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($fields:tt)* }) => {
        $crate::pdata::layout::layout! {
            $(#[$meta])*
            $vis struct $name {
                /// Flags: what each bit means is the format's.
                pub flags: u32 @ 4,
                /// Where the superblock says it lives.
                pub blocknr: u64 @ 8,
                /// Unused, zero.
                pub uuid: [u8; 16] @ 16,
                /// The format's magic number.
                pub magic: u64 @ $crate::pdata::layout::MAGIC_OFFSET,
                /// The format's version.
                pub version: u32 @ 40,
                $($fields)*
            }
        }
    };
}
pub(crate) use superblock_layout;

#[cfg(test)]
mod tests {
    layout! {
        /// Every kind of field, with gaps between some of them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        struct Inner {
            a: u32 @ 0,
            b: u64 @ 8,
        }
    }

    impl Inner {
        fn unpack(b: &[u8]) -> Inner {
            Inner::unpack_fields(b)
        }

        // Like SmRoot: the nested structure owns its tail up to its size.
        fn pack(&self, b: &mut [u8]) {
            self.pack_fields(b);
            b[Inner::FIELDS_END..].fill(0);
        }
    }

    field_via_pack!(Inner, 20);

    layout! {
        #[derive(Debug, Clone, PartialEq, Eq)]
        struct Outer {
            x: u32 @ 2,
            y: u64 @ 6,
            id: [u8; 3] @ 14,
            inner: Inner @ 17,
            z: u32 @ 37,
        }
    }

    superblock_layout! {
        #[derive(Debug, Clone, PartialEq, Eq)]
        struct Head {
            own: u32 @ 44,
        }
    }

    #[test]
    fn every_superblock_starts_with_the_same_fields_after_its_checksum() {
        // Byte i holds i: each field reads back the bytes at its offset.
        let bytes: [u8; 50] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        let h = Head::unpack_fields(&bytes);
        assert_eq!(h.flags, 0x0706_0504);
        assert_eq!(h.blocknr, 0x0F0E_0D0C_0B0A_0908);
        assert_eq!(h.uuid[0], 16);
        assert_eq!(h.uuid[15], 31);
        assert_eq!(h.magic, 0x2726_2524_2322_2120);
        assert_eq!(h.version, 0x2B2A_2928);
        assert_eq!(h.own, 0x2F2E_2D2C);
        let mut again = [0u8; 50];
        h.pack_fields(&mut again);
        assert_eq!(again[4..48], bytes[4..48]);
        assert_eq!(again[..4], [0; 4], "the checksum is not a field");
    }

    #[test]
    fn fields_land_at_their_offsets_and_round_trip() {
        let o = Outer {
            x: 0x0102_0304,
            y: 0x1112_1314_1516_1718,
            id: [0xA1, 0xA2, 0xA3],
            inner: Inner {
                a: 0x2122_2324,
                b: 0x3132_3334_3536_3738,
            },
            z: 0x4142_4344,
        };
        let mut b = [0xEEu8; 43];
        o.pack_fields(&mut b);
        #[rustfmt::skip]
        let expected: [u8; 43] = [
            0xEE, 0xEE,                                     // gap 0..2, untouched
            0x04, 0x03, 0x02, 0x01,                         // x @ 2
            0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, // y @ 6
            0xA1, 0xA2, 0xA3,                               // id @ 14
            0x24, 0x23, 0x22, 0x21,                         // inner.a @ 17
            0xEE, 0xEE, 0xEE, 0xEE,                         // inner's gap 4..8, untouched
            0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31, // inner.b @ 17 + 8
            0, 0, 0, 0,                                     // inner's tail 16..20
            0x44, 0x43, 0x42, 0x41,                         // z @ 37
            0xEE, 0xEE,                                     // past the fields, untouched
        ];
        assert_eq!(b, expected);
        assert_eq!(Outer::unpack_fields(&b), o);
        assert_eq!(Outer::FIELDS_END, 41);
        assert_eq!(Inner::FIELDS_END, 16);
    }
}
