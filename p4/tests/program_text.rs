//! The P4 text carries every ID of the schema exactly where it belongs, and
//! every constant the pipeline defines with the pipeline's value.
//!
//! The text is read back with a small line-based reader of the generated
//! layout (annotations on the line before each declaration, one key element
//! per line, an action's parameters on its declaration line).

use beamer_pipeline::hash::{CRC32_INIT, CRC32_POLY, CRC32_XOR_OUT};
use beamer_pipeline::schema::{self, MatchKind, Scope};
use beamer_pipeline::wire::{ethernet, ipv4, option};
use beamer_pipeline::{DropReason, PipelineParams, Target};
use std::collections::HashMap;

fn programs() -> Vec<(Target, PipelineParams, String)> {
    let small = PipelineParams {
        buckets: 1 << 10,
        max_vips: 5,
        max_vip_entries: 300,
        routes: 40,
    };
    let mut v = Vec::new();
    for params in [PipelineParams::default(), small] {
        for t in Target::ALL {
            v.push((t, params, beamer_p4gen::program(t, &params)));
        }
    }
    v
}

fn num(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
    }
}

/// The text between `open` and the next `close` after it.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// `@id(N) @name("x")` on a line: (N, x).
fn id_name(line: &str) -> Option<(u32, String)> {
    let id = between(line, "@id(", ")")?;
    let name = between(line, "@name(\"", "\")")?;
    Some((num(id) as u32, name.to_string()))
}

#[derive(Debug, Default)]
struct Decl {
    id: u32,
    /// The declaration line, trimmed.
    head: String,
    /// The lines of its block, for tables.
    body: Vec<String>,
}

/// Every declaration annotated with `@id(..) @name(..)` on its own line,
/// by name, with how many times each name was declared.
fn declarations(text: &str) -> HashMap<String, Vec<Decl>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: HashMap<String, Vec<Decl>> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if !t.starts_with("@id(") {
            continue;
        }
        let (id, name) = id_name(t).expect("an object @id comes with its @name");
        let head = lines[i + 1].trim().to_string();
        let mut body = Vec::new();
        if head.starts_with("table ") {
            let indent = lines[i + 1].len() - lines[i + 1].trim_start().len();
            for l in &lines[i + 2..] {
                if l.trim() == "}" && l.len() - l.trim_start().len() == indent {
                    break;
                }
                body.push(l.trim().to_string());
            }
        }
        out.entry(name).or_default().push(Decl { id, head, body });
    }
    out
}

fn the<'a>(decls: &'a HashMap<String, Vec<Decl>>, name: &str) -> &'a Decl {
    let d = decls
        .get(name)
        .unwrap_or_else(|| panic!("{name} not declared"));
    assert_eq!(d.len(), 1, "{name} declared {} times", d.len());
    &d[0]
}

#[test]
fn every_schema_id_is_on_its_object() {
    for (target, params, text) in programs() {
        let decls = declarations(&text);
        let mut expected_ids = 0;

        for t in schema::TABLES {
            let d = the(&decls, t.name);
            assert_eq!(d.id, t.id, "{target}: table {}", t.name);
            assert_eq!(d.head, format!("table {} {{", t.name), "{target}");
            expected_ids += 1 + t.keys.len();
            // Key elements: `expr: kind @id(k) @name("name");`, in order.
            let keys: Vec<&String> = d.body.iter().filter(|l| l.contains("@id(")).collect();
            assert_eq!(keys.len(), t.keys.len(), "{target}: keys of {}", t.name);
            for (line, k) in keys.iter().zip(t.keys) {
                let kind = match k.kind {
                    MatchKind::Exact => "exact",
                    MatchKind::Lpm => "lpm",
                };
                assert_eq!(
                    id_name(line),
                    Some((k.id, k.name.to_string())),
                    "{target}: {}.{}",
                    t.name,
                    k.name
                );
                assert!(line.contains(&format!(": {kind} @id(")), "{target}: {line}");
            }
            for r in t.actions {
                let anno = match r.scope {
                    Scope::TableAndDefault => "",
                    Scope::TableOnly => "@tableonly ",
                    Scope::DefaultOnly => "@defaultonly ",
                };
                let entry = format!("{anno}{};", r.action.name);
                assert!(
                    d.body.contains(&entry),
                    "{target}: {} lacks {entry}",
                    t.name
                );
            }
            let konst = if t.const_default_action { "const " } else { "" };
            let default = format!("{konst}default_action = {}(", t.default_action.name);
            assert!(
                d.body.iter().any(|l| l.starts_with(&default)),
                "{target}: {} default",
                t.name
            );
            let size = format!("size = {};", params.table_size(t.size));
            assert!(d.body.contains(&size), "{target}: {} {size}", t.name);
            let counters: Vec<&String> = d
                .body
                .iter()
                .filter(|l| l.starts_with("counters = "))
                .collect();
            match t.direct_counter {
                Some(c) => assert_eq!(counters, [&format!("counters = {};", c.name)]),
                None => assert!(counters.is_empty(), "{target}: {}", t.name),
            }
        }

        for a in schema::ACTIONS {
            let d = the(&decls, a.name);
            assert_eq!(d.id, a.id, "{target}: action {}", a.name);
            let params_text = d
                .head
                .strip_prefix(&format!("action {}(", a.name))
                .and_then(|s| s.strip_suffix(") {"))
                .unwrap_or_else(|| panic!("{target}: {}", d.head));
            let declared: Vec<&str> = params_text.split(", ").filter(|s| !s.is_empty()).collect();
            assert_eq!(declared.len(), a.params.len(), "{target}: {}", d.head);
            for (decl, p) in declared.iter().zip(a.params) {
                let want = format!("@id({}) bit<{}> {}", p.id, p.width.bits(&params), p.name);
                assert_eq!(*decl, want, "{target}: {}", a.name);
            }
            expected_ids += 1 + a.params.len();
        }

        for c in schema::COUNTERS {
            let d = the(&decls, c.name);
            assert_eq!(d.id, c.id, "{target}: counter {}", c.name);
            let ok = match target {
                Target::V1model => d.head.starts_with("counter(DROP_REASONS, "),
                Target::Tna => d.head.starts_with("Counter<") && d.head.contains("(DROP_REASONS, "),
            };
            assert!(
                ok && d.head.ends_with(&format!(" {};", c.name)),
                "{}",
                d.head
            );
            expected_ids += 1;
        }
        for (c, _) in schema::DIRECT_COUNTERS {
            let d = the(&decls, c.name);
            assert_eq!(d.id, c.id, "{target}: direct counter {}", c.name);
            let ok = match target {
                Target::V1model => d.head.starts_with("direct_counter("),
                Target::Tna => d.head.starts_with("DirectCounter<"),
            };
            assert!(
                ok && d.head.ends_with(&format!(" {};", c.name)),
                "{}",
                d.head
            );
            expected_ids += 1;
        }

        // No @id anywhere else.
        assert_eq!(text.matches("@id(").count(), expected_ids, "{target}");
    }
}

/// `const bit<W> NAME = V;` and `const drop_reason_t NAME = V;` lines.
fn constants(text: &str) -> HashMap<String, (String, u64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("const ")?;
            let (ty, rest) = rest.split_once(' ')?;
            let (name, rest) = rest.split_once(" = ")?;
            let value = rest.split(';').next()?;
            Some((name.to_string(), (ty.to_string(), num(value))))
        })
        .collect()
}

#[test]
fn constants_are_the_pipeline_values() {
    let ip = ipv4::HEADER_LEN as u64;
    // (P4 constant, its type, the pipeline's value)
    let table: Vec<(&str, &str, u64)> = vec![
        ("ETHERTYPE_IPV4", "bit<16>", ethernet::ETHERTYPE_IPV4.into()),
        ("IPV4_VERSION", "bit<4>", ipv4::VERSION.into()),
        ("IHL_NO_OPTIONS", "bit<4>", ipv4::IHL_NO_OPTIONS.into()),
        ("IHL_WITH_OPTION", "bit<4>", option::OUTER_IHL.into()),
        ("PROTO_IPIP", "bit<8>", ipv4::PROTO_IPIP.into()),
        ("PROTO_TCP", "bit<8>", ipv4::PROTO_TCP.into()),
        ("PROTO_UDP", "bit<8>", ipv4::PROTO_UDP.into()),
        (
            "FRAGMENT_BITS",
            "bit<16>",
            (ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK).into(),
        ),
        ("OUTER_TTL", "bit<8>", option::OUTER_TTL.into()),
        ("OUTER_LEN_PLAIN", "bit<16>", ip),
        (
            "OUTER_LEN_WITH_OPTION",
            "bit<16>",
            option::OUTER_HEADER_LEN as u64,
        ),
        ("OPTION_TYPE", "bit<8>", option::OPTION_TYPE.into()),
        ("OPTION_LEN", "bit<8>", option::OPTION_LEN as u64),
        ("DROP_REASONS", "bit<32>", DropReason::COUNT as u64),
    ];
    for (target, params, text) in programs() {
        let consts = constants(&text);
        for (name, ty, value) in &table {
            assert_eq!(
                consts.get(*name),
                Some(&(ty.to_string(), *value)),
                "{target}: {name}"
            );
        }
        for r in DropReason::ALL {
            let name = format!("DROP_{}", r.name().to_ascii_uppercase());
            assert_eq!(
                consts.get(&name),
                Some(&("drop_reason_t".to_string(), r.index() as u64)),
                "{target}: {name}"
            );
        }
        match target {
            Target::V1model => {
                assert_eq!(
                    consts.get("BUCKETS"),
                    Some(&("bit<32>".to_string(), params.buckets.into()))
                );
                let k = params.bucket_bits();
                assert!(text.contains(&format!(
                    "hash(meta.bucket, HashAlgorithm.crc32, {k}w0, {{ hdr.ipv4.src_addr, meta.l4_src_port }}, BUCKETS);"
                )));
            }
            Target::Tna => {
                let poly = format!(
                    "CRCPolynomial<bit<32>>(32w{:#010x}, true, false, false, 32w{:#010x}, 32w{:#010x})",
                    CRC32_POLY, CRC32_INIT, CRC32_XOR_OUT
                );
                assert!(text.contains(&poly), "{poly}");
                assert!(text.contains(&format!(
                    "meta.bucket = (bit<{}>)bucket_hash.get({{ hdr.ipv4.src_addr, meta.l4_src_port }});",
                    params.bucket_bits()
                )));
            }
        }
        assert!(text.contains(&format!("bit<{}> bucket;", params.bucket_bits())));
    }
}

#[test]
fn files_say_they_are_generated_and_by_which_command() {
    for (target, params, text) in programs() {
        let first: Vec<&str> = text.lines().take(2).collect();
        assert_eq!(first[0], "// GENERATED FILE. Do not edit: regenerate with");
        assert_eq!(
            first[1],
            format!("//   {}", beamer_p4gen::command_line(target, &params))
        );
        assert!(first[1].contains(&format!("--target {target} --buckets {}", params.buckets)));
    }
}

/// The text with comments and string literals blanked out.
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut out = String::new();
            let mut in_str = false;
            let mut chars = l.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' => in_str = !in_str,
                    '/' if !in_str && chars.peek() == Some(&'/') => break,
                    _ if in_str => {}
                    _ => out.push(c),
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn delimiters_balance() {
    for (target, _, text) in programs() {
        let mut stack = Vec::new();
        for (n, line) in code_only(&text).lines().enumerate() {
            for c in line.chars() {
                match c {
                    '{' | '(' | '[' => stack.push((c, n + 1)),
                    '}' | ')' | ']' => {
                        let want = match c {
                            '}' => '{',
                            ')' => '(',
                            _ => '[',
                        };
                        let (open, at) = stack
                            .pop()
                            .unwrap_or_else(|| panic!("{target}: line {}: unmatched {c}", n + 1));
                        assert_eq!(open, want, "{target}: line {}: {c} closes line {at}", n + 1);
                    }
                    _ => {}
                }
            }
        }
        assert!(stack.is_empty(), "{target}: unclosed {stack:?}");
    }
}

/// The `table ... { ... }` blocks of a program, as text.
fn table_blocks(text: &str) -> Vec<String> {
    declarations(text)
        .into_values()
        .flatten()
        .filter(|d| d.head.starts_with("table "))
        .map(|d| format!("{}\n{}", d.head, d.body.join("\n")))
        .collect()
}

#[test]
fn both_programs_declare_the_same_tables_and_apply_order() {
    let params = PipelineParams::default();
    let v1 = beamer_p4gen::program(Target::V1model, &params);
    let tna = beamer_p4gen::program(Target::Tna, &params);
    let mut a = table_blocks(&v1);
    let mut b = table_blocks(&tna);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let applies = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.trim().ends_with(".apply();"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    assert_eq!(applies(&v1), applies(&tna));
}
