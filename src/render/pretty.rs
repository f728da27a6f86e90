//! Pretty-printed JSON written straight into a buffer, byte for byte as
//! `serde_json::to_writer_pretty` writes it, for the few shapes on the hot
//! path of `topo --format json` (one object per device, thousands of
//! them). serde_json goes through a formatter call, a key escape and an
//! indentation loop per token; here a key and its indentation are one
//! copy. Strings and floats still go through serde_json, so escaping and
//! number formatting cannot drift. Tests compare the two on every fixture.

use serde::Serialize;

/// A value that writes itself as pretty JSON.
pub trait WritePretty {
    fn write_pretty(&self, w: &mut Pretty<'_>);
}

/// The writer: the output and where the formatter would be.
pub struct Pretty<'a> {
    out: &'a mut Vec<u8>,
    /// Nesting depth (serde_json's `current_indent`).
    depth: usize,
    /// Nothing written yet in the innermost object or array.
    empty: bool,
}

/// A newline and enough two-space indentation for any depth used here.
const NEWLINE_INDENT: &[u8] = b"\n                                                                ";

impl<'a> Pretty<'a> {
    /// A writer for a value nested `depth` levels deep.
    pub fn new(out: &'a mut Vec<u8>, depth: usize) -> Self {
        Pretty {
            out,
            depth,
            empty: false,
        }
    }

    fn newline(&mut self) {
        let indent = (1 + 2 * self.depth).min(NEWLINE_INDENT.len());
        self.out.extend_from_slice(&NEWLINE_INDENT[..indent]);
    }

    /// The separator before an object key or an array element.
    fn separate(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.newline();
    }

    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.depth += 1;
        self.empty = true;
    }

    fn close(&mut self, bracket: u8) {
        self.depth -= 1;
        if !self.empty {
            self.newline();
        }
        self.out.push(bracket);
        self.empty = false;
    }

    /// An object whose fields `fields` writes with [`field`](Self::field).
    pub fn object(&mut self, fields: impl FnOnce(&mut Self)) {
        self.open(b'{');
        fields(self);
        self.close(b'}');
    }

    /// One field of an object; `key` is a plain ASCII name (no escaping).
    pub fn field<T: WritePretty + ?Sized>(&mut self, key: &str, value: &T) {
        debug_assert!(
            key.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        self.separate();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\": ");
        value.write_pretty(self);
    }

    /// Anything else, through serde_json (a string, a float, an enum).
    pub fn serde<T: Serialize + ?Sized>(&mut self, value: &T) {
        // Writing into a Vec cannot fail, nor can these values.
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    /// `text` as a JSON string, for text that needs no escaping (an
    /// address, hex digits).
    pub fn quoted(&mut self, text: &impl std::fmt::Display) {
        use std::io::Write;
        self.out.push(b'"');
        let start = self.out.len();
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{text}");
        debug_assert!(
            self.out[start..]
                .iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        self.out.push(b'"');
    }

    fn raw(&mut self, text: &[u8]) {
        self.out.extend_from_slice(text);
    }
}

impl<T: WritePretty + ?Sized> WritePretty for &T {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        (**self).write_pretty(w);
    }
}

impl<T: WritePretty> WritePretty for Option<T> {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        match self {
            Some(v) => v.write_pretty(w),
            None => w.raw(b"null"),
        }
    }
}

impl<T: WritePretty> WritePretty for [T] {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.open(b'[');
        for v in self {
            w.separate();
            v.write_pretty(w);
        }
        w.close(b']');
    }
}

impl<T: WritePretty> WritePretty for Vec<T> {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        self.as_slice().write_pretty(w);
    }
}

impl WritePretty for bool {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.raw(if *self { b"true" } else { b"false" });
    }
}

impl WritePretty for str {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.serde(self);
    }
}

impl WritePretty for String {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.serde(self.as_str());
    }
}

impl WritePretty for f64 {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.serde(self);
    }
}

/// Declares a wire struct once and derives from that one list of fields
/// both its `Serialize` impl (what `#[derive(Serialize)]` would write:
/// a struct of these fields, in this order) and its [`WritePretty`] impl,
/// so the two cannot drift apart. A field marked `#[skip_if(path)]` is
/// left out when `path(&field)` is true (serde's `skip_serializing_if`).
///
/// ```ignore
/// wire_struct! {
///     /// A link.
///     struct LinkJson {
///         width: Option<u8>,
///         #[skip_if(std::ops::Not::not)]
///         degraded: bool,
///     }
/// }
/// ```
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lt:lifetime>)? {
            $(
                $(#[doc = $doc:expr])*
                $(#[skip_if($skip:path)])?
                $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name $(<$lt>)? {
            $(
                $(#[doc = $doc])*
                $field: $ty,
            )*
        }

        impl $(<$lt>)? serde::Serialize for $name $(<$lt>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let len = 0 $( + usize::from(!wire_struct!(@skipped self $field $($skip)?)) )*;
                let mut st = s.serialize_struct(stringify!($name), len)?;
                $(
                    if wire_struct!(@skipped self $field $($skip)?) {
                        st.skip_field(stringify!($field))?;
                    } else {
                        st.serialize_field(stringify!($field), &self.$field)?;
                    }
                )*
                st.end()
            }
        }

        impl $(<$lt>)? $crate::render::pretty::WritePretty for $name $(<$lt>)? {
            fn write_pretty(&self, w: &mut $crate::render::pretty::Pretty<'_>) {
                w.object(|w| {
                    $(
                        if !wire_struct!(@skipped self $field $($skip)?) {
                            w.field(stringify!($field), &self.$field);
                        }
                    )*
                });
            }
        }
    };
    (@skipped $self:ident $field:ident) => { false };
    (@skipped $self:ident $field:ident $skip:path) => { $skip(&$self.$field) };
}

pub(crate) use wire_struct;

/// Integers in decimal, as itoa (serde_json's) writes them.
macro_rules! integers {
    ($($t:ty),*) => {$(
        impl WritePretty for $t {
            fn write_pretty(&self, w: &mut Pretty<'_>) {
                let value = *self as i128;
                let mut digits = [0u8; 40];
                let mut at = digits.len();
                let mut n = value.unsigned_abs();
                loop {
                    at -= 1;
                    digits[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                if value < 0 {
                    w.raw(b"-");
                }
                w.raw(&digits[at..]);
            }
        }
    )*};
}

integers!(u8, u16, u32, u64, usize, i32);

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty<T: WritePretty + ?Sized>(v: &T) -> String {
        let mut out = Vec::new();
        v.write_pretty(&mut Pretty::new(&mut out, 0));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scalars_and_lists_match_serde_json() {
        let serde = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap();
        assert_eq!(pretty(&0u64), "0");
        assert_eq!(pretty(&u64::MAX), u64::MAX.to_string());
        assert_eq!(pretty(&-12i32), "-12");
        assert_eq!(pretty(&i32::MIN), i32::MIN.to_string());
        assert_eq!(pretty(&2.5f64), "2.5");
        assert_eq!(pretty(&16.0f64), "16.0");
        assert_eq!(pretty(&f64::NAN), "null");
        assert_eq!(pretty("a\"b\n"), serde(&"a\"b\n".into()));
        assert_eq!(pretty(&None::<u8>), "null");
        assert_eq!(pretty(&Vec::<u8>::new()), "[]");
        assert_eq!(
            pretty(&vec!["x", "y"]),
            serde(&serde_json::json!(["x", "y"]))
        );
        struct Empty;
        impl WritePretty for Empty {
            fn write_pretty(&self, w: &mut Pretty<'_>) {
                w.object(|_| {});
            }
        }
        struct Sample;
        impl WritePretty for Sample {
            fn write_pretty(&self, w: &mut Pretty<'_>) {
                w.object(|w| {
                    w.field("a", &1u8);
                    w.field("empty", &Vec::<u8>::new());
                    w.field("obj", &Empty);
                    w.field("objs", &vec![Empty, Empty]);
                    w.field("list", &vec![vec![1u8], vec![]]);
                });
            }
        }
        let expected = serde_json::json!({
            "a": 1, "empty": [], "obj": {}, "objs": [{}, {}], "list": [[1], []]
        });
        assert_eq!(pretty(&Sample), serde(&expected));
        // Nested deeper, as the device list is.
        let mut out = Vec::new();
        Sample.write_pretty(&mut Pretty::new(&mut out, 2));
        let mut nested = Vec::new();
        let mut formatter = serde_json::ser::PrettyFormatter::new();
        use serde_json::ser::Formatter;
        formatter.begin_object(&mut std::io::sink()).unwrap();
        formatter.begin_array(&mut std::io::sink()).unwrap();
        expected
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut nested,
                formatter,
            ))
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(nested).unwrap()
        );
    }

    wire_struct! {
        /// A wire struct with a skipped field and a borrowed one.
        struct Declared<'a> {
            name: &'a str,
            /// Written only when true.
            #[skip_if(std::ops::Not::not)]
            flag: bool,
            list: Vec<u8>,
            nested: Option<Inner>,
        }
    }

    wire_struct! {
        struct Inner {
            #[skip_if(Option::is_none)]
            a: Option<u8>,
        }
    }

    /// The same fields as `Declared`, derived by serde.
    #[derive(Serialize)]
    struct Derived<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        flag: bool,
        list: Vec<u8>,
        nested: Option<DerivedInner>,
    }

    #[derive(Serialize)]
    struct DerivedInner {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
    }

    #[test]
    fn a_declared_wire_struct_writes_what_serde_derive_writes() {
        for flag in [false, true] {
            for a in [None, Some(7)] {
                let declared = Declared {
                    name: "x\"y",
                    flag,
                    list: vec![1, 2],
                    nested: Some(Inner { a }),
                };
                let derived = Derived {
                    name: "x\"y",
                    flag,
                    list: vec![1, 2],
                    nested: Some(DerivedInner { a }),
                };
                let expected = serde_json::to_string_pretty(&derived).unwrap();
                assert_eq!(serde_json::to_string_pretty(&declared).unwrap(), expected);
                assert_eq!(pretty(&declared), expected);
                assert_eq!(
                    serde_json::to_value(&declared).unwrap(),
                    serde_json::to_value(&derived).unwrap()
                );
            }
        }
    }
}
