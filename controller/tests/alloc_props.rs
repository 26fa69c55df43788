//! Properties of the bucket allocator over random sequences of operator
//! changes and passing time, checked against an independent model.

use beamer_controller::alloc::apportion::Ideal;
use beamer_controller::alloc::{
    AllocConfig, Allocator, BucketState, Change, ServerSpec, ServerState, ServicePort, VipSpec,
};
use beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS;
use beamer_pipeline::entries::{Entry, EntryKey, Update, VipAction};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

const VIP: u16 = 0;
const OTHER: u16 = 1;
const T0: u32 = 1_700_000_000;
const POOL: u8 = 8;

fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u32),
    Remove(u8),
    Drain(u8),
    Activate(u8),
    Weight(u8, u32),
}

#[derive(Debug, Clone)]
enum Step {
    Batch(Vec<Op>),
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 1..=POOL;
    prop_oneof![
        3 => (s.clone(), 1u32..=5).prop_map(|(i, w)| Op::Add(i, w)),
        2 => s.clone().prop_map(Op::Remove),
        2 => s.clone().prop_map(Op::Drain),
        1 => s.clone().prop_map(Op::Activate),
        2 => (s, 0u32..=5).prop_map(|(i, w)| Op::Weight(i, w)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => op().prop_map(|o| Step::Batch(vec![o])),
        2 => proptest::collection::vec(op(), 2..=3).prop_map(Step::Batch),
        2 => (1u32..=300).prop_map(Step::Advance),
    ]
}

fn change(o: &Op) -> Change {
    match *o {
        Op::Add(i, weight) => Change::AddServer {
            vip_id: VIP,
            server: ServerSpec {
                dip: dip(i),
                port: Some(20_000 + u16::from(i)),
                weight,
            },
        },
        Op::Remove(i) => Change::RemoveServer {
            vip_id: VIP,
            dip: dip(i),
        },
        Op::Drain(i) => Change::DrainServer {
            vip_id: VIP,
            dip: dip(i),
        },
        Op::Activate(i) => Change::ActivateServer {
            vip_id: VIP,
            dip: dip(i),
        },
        Op::Weight(i, weight) => Change::SetWeight {
            vip_id: VIP,
            dip: dip(i),
            weight,
        },
    }
}

/// The model's view of the servers: dip -> (weight, active).
type Model = BTreeMap<Ipv4Addr, (u32, bool)>;

/// Applies a batch to the model; `None` when the allocator must refuse it.
fn model_apply(m: &Model, ops: &[Op]) -> Option<Model> {
    let mut m = m.clone();
    for o in ops {
        match *o {
            Op::Add(i, w) => {
                if w == 0 || m.insert(dip(i), (w, true)).is_some() {
                    return None;
                }
            }
            Op::Remove(i) => {
                m.remove(&dip(i))?;
            }
            Op::Drain(i) => match m.get_mut(&dip(i)) {
                Some((_, a)) if *a => *a = false,
                _ => return None,
            },
            Op::Activate(i) => match m.get_mut(&dip(i)) {
                Some((_, a)) if !*a => *a = true,
                _ => return None,
            },
            Op::Weight(i, w) => match m.get_mut(&dip(i)) {
                Some((x, _)) if w > 0 => *x = w,
                _ => return None,
            },
        }
    }
    m.values().any(|&(_, a)| a).then_some(m)
}

fn counts(b: &[BucketState]) -> BTreeMap<Ipv4Addr, u32> {
    let mut c = BTreeMap::new();
    for x in b {
        *c.entry(x.dip).or_default() += 1;
    }
    c
}

/// Balanced targets of the active servers, by brute force.
fn balanced_targets(n: u32, active: &[(Ipv4Addr, u32)]) -> Vec<BTreeMap<Ipv4Addr, u32>> {
    let total: u64 = active.iter().map(|&(_, w)| u64::from(w)).sum();
    let q: Vec<Ideal> = active
        .iter()
        .map(|&(_, w)| Ideal::new(n, w, total))
        .collect();
    (0u32..1 << active.len())
        .map(|mask| {
            active
                .iter()
                .zip(&q)
                .enumerate()
                .map(|(i, (&(d, _), q))| {
                    (
                        d,
                        if mask >> i & 1 == 1 {
                            q.ceil()
                        } else {
                            q.floor()
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|t| t.values().map(|&x| u64::from(x)).sum::<u64>() == u64::from(n))
        .collect()
}

fn entries(a: &Allocator) -> HashMap<EntryKey, Entry> {
    a.vip_entries()
        .map(|(k, v)| Entry::Vip(k, v))
        .chain(a.bucket_entries().map(|(k, b)| Entry::Bucket(k, b)))
        .map(|e| (e.key(), e))
        .collect()
}

/// Writes `batches` to a simulated switch holding `sw`, with P4Runtime's
/// rules, checking after each batch that every service port leads to a full
/// bucket set.
fn apply_diff(
    sw: &mut HashMap<EntryKey, Entry>,
    batches: &[Vec<Update>],
    buckets: u32,
) -> Result<(), TestCaseError> {
    for batch in batches {
        prop_assert!(!batch.is_empty());
        for u in batch {
            match u {
                Update::Insert(e) => prop_assert!(sw.insert(e.key(), *e).is_none(), "{u:?}"),
                Update::Modify(e) => prop_assert!(sw.insert(e.key(), *e).is_some(), "{u:?}"),
                Update::Delete(k) => prop_assert!(sw.remove(k).is_some(), "{u:?}"),
                Update::SetConfig(_) => prop_assert!(false, "the allocator never sets config"),
            }
        }
        for e in sw.values() {
            if let Entry::Vip(_, VipAction::ToBuckets { vip_id }) = e {
                let n = sw
                    .keys()
                    .filter(|k| matches!(k, EntryKey::Bucket(b) if b.vip_id == *vip_id))
                    .count();
                prop_assert_eq!(n as u32, buckets, "service port without all its buckets");
            }
        }
    }
    Ok(())
}

/// Runs a history, checking every rule after every step; returns how many
/// batches were accepted.
fn run(
    bits: u8,
    timeout: u32,
    initial: Vec<(u8, u32)>,
    steps: Vec<Step>,
) -> Result<usize, TestCaseError> {
    let n = 1u32 << bits;
    let mut a = Allocator::new(AllocConfig {
        bucket_bits: bits,
        daisy_timeout: timeout,
        ..AllocConfig::default()
    })
    .unwrap();
    // A bystander VIP that no step touches, on the same DIPs and ports.
    let mut create = vec![
        Change::AddVip(VipSpec {
            vip_id: OTHER,
            addr: Ipv4Addr::new(192, 0, 2, 2),
            service_ports: vec![ServicePort::tcp(443), ServicePort::udp(443)],
        }),
        Change::AddServer {
            vip_id: OTHER,
            server: ServerSpec {
                dip: dip(1),
                port: Some(20_001),
                weight: 1,
            },
        },
        Change::AddServer {
            vip_id: OTHER,
            server: ServerSpec {
                dip: dip(2),
                port: Some(20_002),
                weight: 3,
            },
        },
        Change::AddVip(VipSpec {
            vip_id: VIP,
            addr: Ipv4Addr::new(192, 0, 2, 1),
            service_ports: vec![ServicePort::tcp(80)],
        }),
    ];
    let mut model = Model::new();
    for (i, w) in initial {
        if let std::collections::btree_map::Entry::Vacant(e) = model.entry(dip(i)) {
            e.insert((w, true));
            create.push(change(&Op::Add(i, w)));
        }
    }
    let mut now = T0;
    let c = a.commit(&create, now).unwrap();
    let mut sw = HashMap::new();
    apply_diff(&mut sw, &c.diff.batches, n)?;
    let bystander = a.vip(OTHER).unwrap().clone();
    let mut successes = 0;
    // The latest change time written so far.
    let mut written = 0;

    for s in steps {
        let before = a.vip(VIP).unwrap().buckets().to_vec();
        let gen0 = a.generation();
        let c = match &s {
            Step::Advance(secs) => {
                now += secs;
                a.expire(now).unwrap()
            }
            Step::Batch(ops) => {
                let changes: Vec<Change> = ops.iter().map(change).collect();
                let want = model_apply(&model, ops);
                match a.commit(&changes, now) {
                    Err(e) => {
                        prop_assert!(want.is_none(), "refused a valid batch {ops:?}: {e}");
                        prop_assert_eq!(a.generation(), gen0);
                        prop_assert_eq!(a.vip(VIP).unwrap().buckets(), &before[..]);
                        prop_assert_eq!(entries(&a), sw.clone());
                        continue;
                    }
                    Ok(c) => {
                        prop_assert!(want.is_some(), "accepted an invalid batch {ops:?}");
                        model = want.unwrap();
                        successes += 1;
                        Some(c)
                    }
                }
            }
        };
        prop_assert_eq!(a.vip(OTHER), Some(&bystander));
        let vip = a.vip(VIP).unwrap();
        let after = vip.buckets().to_vec();
        // The allocator's time: never behind ours, and ahead of it after
        // commits in the same second (change times strictly increase).
        let clock = a.clock();
        prop_assert!(clock >= now);
        if let Some(c) = &c {
            prop_assert_eq!(c.report.now, clock);
        }

        // Generations: +1 per commit or expiry, unchanged otherwise.
        match &c {
            Some(c) => {
                prop_assert_eq!(c.generation, gen0 + 1);
                prop_assert_eq!(a.generation(), gen0 + 1);
                apply_diff(&mut sw, &c.diff.batches, n)?;
            }
            None => {
                prop_assert_eq!(a.generation(), gen0);
                prop_assert_eq!(&after, &before);
            }
        }
        prop_assert_eq!(entries(&a), sw.clone(), "diff reproduces the desired state");

        // The allocator's servers are the model's.
        let servers: Model = vip
            .servers()
            .map(|s| (s.dip, (s.weight, s.state == ServerState::Active)))
            .collect();
        prop_assert_eq!(&servers, &model);
        let active: Vec<(Ipv4Addr, u32)> = model
            .iter()
            .filter(|(_, (_, a))| *a)
            .map(|(d, (w, _))| (*d, *w))
            .collect();
        let total: u64 = active.iter().map(|&(_, w)| u64::from(w)).sum();

        // Balance; buckets only on active servers, chains only to live ones.
        let cnt = counts(&after);
        for (d, &(w, act)) in &model {
            let c = cnt.get(d).copied().unwrap_or(0);
            if act {
                prop_assert!(
                    Ideal::new(n, w, total).admits(c),
                    "{d}: {c} buckets, weight {w}/{total}"
                );
            } else {
                prop_assert_eq!(c, 0, "draining {} holds buckets", d);
            }
        }
        for b in &after {
            prop_assert!(
                model.get(&b.dip).is_some_and(|&(_, a)| a),
                "bucket on {}",
                b.dip
            );
            prop_assert_eq!(b.prev_dip.is_unspecified(), b.change_time == 0);
            if b.has_chain() {
                prop_assert!(
                    model.contains_key(&b.prev_dip),
                    "chain to removed {}",
                    b.prev_dip
                );
                prop_assert_ne!(b.prev_dip, b.dip);
                prop_assert!(
                    b.change_time.saturating_add(timeout) > clock,
                    "chain not expired"
                );
                prop_assert!(timeout > 0, "no chains when chaining is off");
            }
        }
        let due = after
            .iter()
            .filter(|b| b.change_time != 0)
            .map(|b| b.change_time.saturating_add(timeout))
            .min();
        prop_assert_eq!(a.next_expiry(), due);

        let Some(c) = c else { continue };
        let gen1 = c.generation;
        if let Step::Advance(_) = s {
            // Expiry clears due chains and nothing else.
            for (o, x) in before.iter().zip(&after) {
                prop_assert_eq!((o.dip, o.changed_in), (x.dip, x.changed_in));
                if o != x {
                    prop_assert!(o.change_time.saturating_add(timeout) <= clock);
                    prop_assert!(!x.has_chain());
                }
            }
            prop_assert!(c.report.expired > 0);
            continue;
        }

        // Movement: exactly the minimum, from losers to gainers.
        let cnt0 = counts(&before);
        let moved: Vec<usize> = (0..after.len())
            .filter(|&i| before[i].dip != after[i].dip)
            .collect();
        let minimum: u64 = cnt0
            .iter()
            .map(|(d, &c0)| u64::from(c0.saturating_sub(cnt.get(d).copied().unwrap_or(0))))
            .sum();
        prop_assert_eq!(moved.len() as u64, minimum);
        let r = &c.report.vips[0];
        prop_assert_eq!((r.moved, r.minimum), (minimum, minimum));
        prop_assert!(r.balanced());
        let gained =
            |d: &Ipv4Addr| cnt.get(d).copied().unwrap_or(0) > cnt0.get(d).copied().unwrap_or(0);
        for &i in &moved {
            prop_assert!(gained(&after[i].dip), "moved to a server that did not gain");
            prop_assert!(!gained(&before[i].dip));
        }
        // ... and the minimum of every balanced outcome.
        let cost = |t: &BTreeMap<Ipv4Addr, u32>| -> u64 {
            cnt0.iter()
                .map(|(d, &c0)| u64::from(c0.saturating_sub(t.get(d).copied().unwrap_or(0))))
                .sum()
        };
        let targets = balanced_targets(n, &active);
        prop_assert_eq!(Some(minimum), targets.iter().map(cost).min());

        // A lone add moves buckets only to the newcomer, a lone remove or
        // drain only off the leaver, whenever a balanced outcome allows it.
        let old = |d: &Ipv4Addr| cnt0.get(d).copied().unwrap_or(0);
        if let Step::Batch(ops) = &s {
            if let [Op::Add(i, _)] = ops[..] {
                let feasible = targets
                    .iter()
                    .any(|t| t.iter().all(|(d, &x)| *d == dip(i) || x <= old(d)));
                if feasible {
                    prop_assert!(moved.iter().all(|&k| after[k].dip == dip(i)));
                }
            }
            if let [Op::Remove(i) | Op::Drain(i)] = ops[..] {
                let feasible = targets.iter().any(|t| t.iter().all(|(d, &x)| x >= old(d)));
                if feasible {
                    prop_assert!(moved.iter().all(|&k| before[k].dip == dip(i)));
                }
            }
        }

        // Least recently changed first: everything a server gave up changed
        // no later than everything it kept.
        for d in cnt0.keys() {
            let gave = moved
                .iter()
                .filter(|&&k| before[k].dip == *d)
                .map(|&k| before[k].changed_in)
                .max();
            let kept = (0..after.len())
                .filter(|&k| before[k].dip == *d && after[k].dip == *d)
                .map(|k| before[k].changed_in)
                .min();
            if let (Some(g), Some(k)) = (gave, kept) {
                prop_assert!(
                    g <= k,
                    "{d} gave a bucket of generation {g} and kept one of {k}"
                );
            }
        }

        // Change times strictly increase, whatever the clock does.
        let stamped = after
            .iter()
            .any(|b| b.changed_in == gen1 && b.change_time == c.report.stamp);
        prop_assert!(c.report.stamp >= clock);
        if stamped {
            prop_assert!(
                c.report.stamp > written,
                "change time {} reused",
                c.report.stamp
            );
        }
        written = written.max(after.iter().map(|b| b.change_time).max().unwrap_or(0));

        // Chains: set on moves, kept or cleared otherwise.
        for k in 0..after.len() {
            let (o, x) = (before[k], after[k]);
            if o.dip != x.dip {
                prop_assert_eq!(x.changed_in, gen1);
                if model.contains_key(&o.dip) {
                    let want = if timeout == 0 {
                        (Ipv4Addr::UNSPECIFIED, 0)
                    } else {
                        (o.dip, c.report.stamp)
                    };
                    prop_assert_eq!((x.prev_dip, x.change_time), want, "moved off a live server");
                } else if x.has_chain() {
                    // Off a removed server: its own live predecessor, unchanged.
                    prop_assert_eq!((x.prev_dip, x.change_time), (o.prev_dip, o.change_time));
                }
            } else {
                prop_assert_eq!(x.changed_in, o.changed_in);
                if x != o {
                    prop_assert!(!x.has_chain());
                    prop_assert!(
                        !model.contains_key(&o.prev_dip)
                            || o.change_time.saturating_add(timeout) <= clock,
                        "a chain was cleared without cause"
                    );
                }
            }
        }
    }
    // A controller restarted from this switch state moves nothing.
    let vip = a.vip(VIP).unwrap();
    let mut decl = create[..3].to_vec();
    decl.push(Change::AddVip(vip.spec().clone()));
    for s in vip.servers() {
        decl.push(change(&Op::Add(s.dip.octets()[3], s.weight)));
        if s.state == ServerState::Draining {
            decl.push(change(&Op::Drain(s.dip.octets()[3])));
        }
    }
    let (r, c) = Allocator::resume(
        AllocConfig {
            first_generation: a.generation(),
            ..*a.config()
        },
        &decl,
        a.bucket_entries(),
        a.clock(),
    )
    .unwrap();
    prop_assert!(c.diff.is_empty());
    prop_assert_eq!(c.report.moved(), 0);
    prop_assert_eq!(r.next_expiry(), a.next_expiry());
    prop_assert_eq!(entries(&r), entries(&a));
    Ok(successes)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        // Cargo runs tests from the package root.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/alloc_props.proptest-regressions"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_keep_every_rule(
        bits in 2u8..=6,
        timeout in prop_oneof![Just(0u32), Just(30), Just(DEFAULT_DAISY_TIMEOUT_SECS)],
        initial in proptest::collection::vec((1..=POOL, 1u32..=5), 1..=4),
        steps in proptest::collection::vec(step(), 1..=30),
    ) {
        run(bits, timeout, initial, steps)?;
    }
}

/// A fixed history that mixes every kind of step, all of them valid, so
/// every rule is checked on accepted commits whatever the random generator
/// happens to draw.
#[test]
fn a_long_fixed_history_keeps_every_rule() {
    use Op::*;
    let steps = vec![
        Step::Batch(vec![Add(3, 2)]),
        Step::Batch(vec![Drain(1)]),
        Step::Advance(10),
        Step::Batch(vec![Add(4, 1), Remove(2)]),
        Step::Batch(vec![Weight(3, 5)]),
        Step::Batch(vec![Activate(1)]),
        Step::Batch(vec![Remove(3)]),
        Step::Advance(250),
        Step::Batch(vec![Add(5, 3), Add(6, 1), Drain(4)]),
        Step::Batch(vec![Remove(4)]),
        Step::Batch(vec![Weight(1, 1)]),
        Step::Advance(240),
    ];
    for bits in [2, 4, 6] {
        for timeout in [0, 30, DEFAULT_DAISY_TIMEOUT_SECS] {
            let accepted = run(bits, timeout, vec![(1, 1), (2, 1)], steps.clone()).unwrap();
            assert_eq!(accepted, 9);
        }
    }
}
