//! Simplify: copy propagation, common-subexpression elimination and dead-code removal.
//!
//! Every rewrite here gives bitwise the same results: copies are only forwarded from
//! immutable bindings, CSE merges identical pure operations on identical operands, and
//! only unused bindings are removed. Arithmetic identities live in `builder.rs`.

use std::collections::{HashMap, HashSet};

use crate::ir::*;

/// Runs every pass to a fixed point (bounded).
pub fn simplify(f: &mut Func) {
    let mut body = std::mem::take(&mut f.body);
    hoist_snapshots(&mut body, f);
    f.body = body;
    for _ in 0..6 {
        let before = count(&f.body);
        fold_field_of_tuple(f);
        copy_prop(f);
        cse(f);
        dce(f);
        if count(&f.body) == before {
            break;
        }
    }
    forward_final_snapshots(f);
    dce(f);
    fold_mut_init(f);
    fold_literal_seed(&mut f.body);
    first_additions_store(f);
    // `let t = x_bar; t` at the end: return `x_bar` itself.
    if let (Some(Stmt::Let(t, Expr::Use(o))), Some(r)) = (f.body.0.last(), f.ret.var()) {
        if *t == r {
            let o = o.clone();
            f.body.0.pop();
            f.ret = o;
        }
    }
}

/// The bitwise-neutral merges alone (copy propagation, CSE, dead code), for a lowered
/// function before it is transformed: a value the source computes twice (`(s / r).powi(12)
/// - (s / r).powi(6)`) becomes one, so that reverse mode sums its adjoints before
/// multiplying by its partials (`r̄ = (t̄₁ + t̄₂) ∂t/∂r`, one product, not one per use).
pub fn merge(f: &mut Func) {
    for _ in 0..6 {
        let before = count(&f.body);
        copy_prop(f);
        cse(f);
        dce(f);
        if count(&f.body) == before {
            break;
        }
    }
}

/// `let c = acc;` in a loop that does not write `acc` (a reverse sweep's snapshot of an
/// adjoint accumulator, read by every iteration of an inner loop) moves before the loop:
/// the same value, read once. Where the function is differentiated again, the outer reverse
/// pass then keeps one snapshot per outer iteration and writes it once, not once per inner
/// iteration.
fn hoist_snapshots(b: &mut Block, f: &Func) {
    let mut k = 0;
    while k < b.0.len() {
        if let Stmt::For(l) = &mut b.0[k] {
            hoist_snapshots(&mut l.body, f);
            let mut written = HashSet::new();
            walk_stmts(&l.body, &mut |s| match s {
                Stmt::Assign(p, _, _) => {
                    written.insert(p.var);
                }
                Stmt::Mut(v, _) => {
                    written.insert(*v);
                }
                s => written.extend(call_writes(s)),
            });
            let mut out = Vec::new();
            l.body.0.retain(|s| match s {
                Stmt::Let(v, Expr::Use(Operand::Var(m)))
                    if f.vars[*m].mutable && !written.contains(m) && !f.vars[*v].annotated && *m != l.var =>
                {
                    out.push(s.clone());
                    false
                }
                _ => true,
            });
            let n = out.len();
            b.0.splice(k..k, out);
            k += n;
        } else if let Stmt::If(_, t, e) = &mut b.0[k] {
            hoist_snapshots(t, f);
            hoist_snapshots(e, f);
        }
        k += 1;
    }
}

fn count(b: &Block) -> usize {
    let mut n = 0;
    walk_stmts(b, &mut |_| n += 1);
    n
}

fn substitute_operand(o: &mut Operand, map: &HashMap<VarId, Operand>) {
    if let Operand::Var(v) = o {
        if let Some(r) = map.get(v) {
            *o = r.clone();
        }
    }
}

/// Replaces reads of variables by operands (not definitions or places).
fn substitute(b: &mut Block, map: &HashMap<VarId, Operand>) {
    fn expr(e: &mut Expr, map: &HashMap<VarId, Operand>) {
        expr_operands_mut(e, &mut |o| substitute_operand(o, map));
    }
    for st in &mut b.0 {
        match st {
            Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => expr(e, map),
            Stmt::Mut(_, None) => {}
            Stmt::Assign(p, _, v) => {
                p.idx.iter_mut().for_each(|o| substitute_operand(o, map));
                substitute_operand(v, map);
            }
            Stmt::For(l) => {
                substitute_operand(&mut l.lo, map);
                substitute_operand(&mut l.hi, map);
                substitute(&mut l.body, map);
            }
            Stmt::If(c, t, e) => {
                substitute_operand(c, map);
                substitute(t, map);
                substitute(e, map);
            }
        }
    }
}

/// `let t = x;` with `x` immutable (or a constant): uses of `t` read `x`.
fn copy_prop(f: &mut Func) {
    let mut map: HashMap<VarId, Operand> = HashMap::new();
    let mut index_bases = HashSet::new();
    walk_stmts(&f.body, &mut |s| {
        if let Stmt::Let(_, Expr::Index(v, _)) | Stmt::Mut(_, Some(Expr::Index(v, _))) = s {
            index_bases.insert(*v);
        }
    });
    walk_stmts(&f.body, &mut |s| {
        if let Stmt::Let(t, Expr::Use(o)) = s {
            let ok = !f.vars[*t].annotated
                && match o {
                    Operand::Var(v) => !f.vars[*v].mutable,
                    _ => !index_bases.contains(t),
                };
            if ok {
                map.insert(*t, o.clone());
            }
        }
    });
    if map.is_empty() {
        return;
    }
    // Resolve chains.
    let keys: Vec<VarId> = map.keys().copied().collect();
    for k in keys {
        let mut cur = map[&k].clone();
        let mut guard = 0;
        while let Some(next) = cur.var().and_then(|v| map.get(&v)) {
            cur = next.clone();
            guard += 1;
            if guard > 1000 {
                break;
            }
        }
        if index_bases.contains(&k) && cur.var().is_none() {
            map.remove(&k);
        } else {
            map.insert(k, cur);
        }
    }
    // Operands of `Index` must stay variables; constants are not forwarded there.
    substitute(&mut f.body, &map);
    substitute_operand(&mut f.ret, &map);
    remove_lets(&mut f.body, &|v, e| matches!(e, Expr::Use(_)) && map.contains_key(&v));
}

/// `let p = (a, b); let u = p.0;` reads `a` directly: `let u = a;` (then forwarded), where
/// `a` is an immutable binding or a literal (an accumulator may change after the tuple is
/// built).
fn fold_field_of_tuple(f: &mut Func) {
    let mut tuples: HashMap<VarId, Vec<Operand>> = HashMap::new();
    walk_stmts(&f.body, &mut |s| {
        if let Stmt::Let(t, Expr::Tuple(ops)) = s {
            tuples.insert(*t, ops.clone());
        }
    });
    if tuples.is_empty() {
        return;
    }
    let vars = &f.vars;
    let fixed = |o: &Operand| o.var().is_none_or(|v| !vars[v].mutable);
    fn go(
        b: &mut Block,
        tuples: &HashMap<VarId, Vec<Operand>>,
        fixed: &dyn Fn(&Operand) -> bool,
        annotated: &dyn Fn(VarId) -> bool,
    ) {
        for s in &mut b.0 {
            match s {
                Stmt::Let(u, e) => {
                    if let Expr::Field(Operand::Var(t), k) = e {
                        if let Some(o) = tuples.get(t).and_then(|ops| ops.get(*k)) {
                            if fixed(o) && !annotated(*u) {
                                *e = Expr::Use(o.clone());
                            }
                        }
                    }
                }
                Stmt::For(l) => go(&mut l.body, tuples, fixed, annotated),
                Stmt::If(_, t, e) => {
                    go(t, tuples, fixed, annotated);
                    go(e, tuples, fixed, annotated);
                }
                _ => {}
            }
        }
    }
    let annotated: Vec<bool> = f.vars.iter().map(|v| v.annotated).collect();
    let mut body = std::mem::take(&mut f.body);
    go(&mut body, &tuples, &fixed, &|u| annotated[u]);
    f.body = body;
}

fn remove_lets(b: &mut Block, pred: &dyn Fn(VarId, &Expr) -> bool) {
    b.0.retain(|s| !matches!(s, Stmt::Let(v, e) if pred(*v, e)));
    for s in &mut b.0 {
        match s {
            Stmt::For(l) => remove_lets(&mut l.body, pred),
            Stmt::If(_, t, e) => {
                remove_lets(t, pred);
                remove_lets(e, pred);
            }
            _ => {}
        }
    }
}

fn pure_key(f: &Func, e: &Expr) -> Option<String> {
    let imm = |o: &Operand| o.var().is_none_or(|v| !f.vars[v].mutable);
    let ok = match e {
        Expr::Use(_) => false,
        Expr::Index(v, idx) => !f.vars[*v].mutable && idx.iter().all(imm),
        e => expr_operands(e).iter().all(imm),
    };
    if !ok {
        return None;
    }
    // Operations of literals and constants only (`0.5 - 1.0`) have no type of their own:
    // rustc types each occurrence from its use (f32 here, f64 there), so they are not merged.
    if !matches!(e, Expr::Index(..)) && expr_operands(e).iter().all(|o| o.var().is_none()) {
        return None;
    }
    // Commutative operations are keyed with sorted operands: `a * b` and `b * a` merge.
    if let Expr::Prim(p @ (Prim::Add | Prim::Mul), xs) = e {
        let mut keys: Vec<String> = xs.iter().map(|x| format!("{x:?}")).collect();
        keys.sort();
        return Some(format!("{p:?}{keys:?}"));
    }
    Some(format!("{e:?}"))
}

/// Merges identical pure operations (scoped: an outer binding serves nested blocks).
fn cse(f: &mut Func) {
    let mut rename: HashMap<VarId, Operand> = HashMap::new();
    let mut scopes: Vec<HashMap<String, VarId>> = vec![HashMap::new()];
    fn go(f: &Func, b: &Block, scopes: &mut Vec<HashMap<String, VarId>>, rename: &mut HashMap<VarId, Operand>) {
        for s in &b.0 {
            match s {
                Stmt::Let(v, e) => {
                    // Apply earlier merges before keying.
                    let mut e2 = e.clone();
                    let mut tmp = Block(vec![Stmt::Let(*v, e2.clone())]);
                    substitute(&mut tmp, rename);
                    if let Some(Stmt::Let(_, e3)) = tmp.0.pop() {
                        e2 = e3;
                    }
                    if let Some(k) = pure_key(f, &e2) {
                        if let Some(w) = scopes.iter().rev().find_map(|m| m.get(&k)) {
                            if f.vars[*w].ty == f.vars[*v].ty || f.vars[*v].ty == Ty::Unknown {
                                rename.insert(*v, Operand::Var(*w));
                                continue;
                            }
                        }
                        if let Some(m) = scopes.last_mut() {
                            m.insert(k, *v);
                        }
                    }
                }
                Stmt::For(l) => {
                    scopes.push(HashMap::new());
                    go(f, &l.body, scopes, rename);
                    scopes.pop();
                }
                Stmt::If(_, t, e) => {
                    scopes.push(HashMap::new());
                    go(f, t, scopes, rename);
                    scopes.pop();
                    scopes.push(HashMap::new());
                    go(f, e, scopes, rename);
                    scopes.pop();
                }
                _ => {}
            }
        }
    }
    go(f, &f.body, &mut scopes, &mut rename);
    if rename.is_empty() {
        return;
    }
    substitute(&mut f.body, &rename);
    substitute_operand(&mut f.ret, &rename);
    remove_lets(&mut f.body, &|v, _| rename.contains_key(&v));
}

/// Variables read by something that matters (not counting writes to themselves, nor the
/// accumulators a call adds into: see [`writing_calls`]).
fn live_reads(b: &Block, out: &mut HashSet<VarId>) {
    for s in &b.0 {
        match s {
            Stmt::Let(_, Expr::Call(c)) | Stmt::Mut(_, Some(Expr::Call(c))) => {
                out.extend(c.args.iter().filter(|a| !a.by_mut).filter_map(|a| a.op.var()))
            }
            Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => out.extend(expr_operands(e).iter().filter_map(Operand::var)),
            Stmt::Mut(_, None) => {}
            Stmt::Assign(p, _, v) => {
                out.extend(p.idx.iter().filter_map(Operand::var));
                out.extend(v.var());
            }
            Stmt::For(l) => {
                out.extend(l.bound_vars());
                live_reads(&l.body, out);
            }
            Stmt::If(c, t, e) => {
                out.extend(c.var());
                live_reads(t, out);
                live_reads(e, out);
            }
        }
    }
}

/// A call adding into accumulators (`g::vjp_bwd_acc(.., &mut x_bar)`) is kept while its
/// result or one of the accumulators is live; all its accumulators are then live.
fn writing_calls(b: &Block, live: &mut HashSet<VarId>) {
    walk_stmts(b, &mut |s| {
        if let Stmt::Let(v, Expr::Call(c)) | Stmt::Mut(v, Some(Expr::Call(c))) = s {
            let w = c.writes();
            if live.contains(v) || w.iter().any(|x| live.contains(x)) {
                live.extend(w);
            }
        }
    });
}

/// Whether a statement stays for a live set: what it defines or writes is live.
fn kept(s: &Stmt, live: &HashSet<VarId>) -> bool {
    match s {
        Stmt::Let(v, Expr::Call(c)) | Stmt::Mut(v, Some(Expr::Call(c))) if !c.writes().is_empty() => {
            live.contains(v) || c.writes().iter().any(|w| live.contains(w))
        }
        Stmt::Let(v, _) | Stmt::Mut(v, _) => live.contains(v),
        Stmt::Assign(p, _, _) => live.contains(&p.var),
        Stmt::For(_) | Stmt::If(..) => true,
    }
}

/// Removes bindings nobody reads, variables only ever written, and empty blocks. The
/// accumulators of a function's `&mut` parameters are its results: always live.
pub fn dce(f: &mut Func) {
    loop {
        let mut live = HashSet::new();
        live_reads(&f.body, &mut live);
        live.extend(f.ret.var());
        live.extend(
            f.params
                .iter()
                .filter(|p| f.vars[p.var].storage == Storage::MutParam)
                .map(|p| p.var),
        );
        loop {
            let n = live.len();
            writing_calls(&f.body, &mut live);
            if live.len() == n {
                break;
            }
        }
        // Writes into a live mutable variable keep their operands live (already counted).
        let before = count(&f.body);
        prune(&mut f.body, &live);
        if count(&f.body) == before {
            break;
        }
    }
}

fn prune(b: &mut Block, live: &HashSet<VarId>) {
    b.0.retain_mut(|s| match s {
        Stmt::Let(..) | Stmt::Mut(..) | Stmt::Assign(..) => kept(s, live),
        Stmt::For(l) => {
            prune(&mut l.body, live);
            !l.body.0.is_empty()
        }
        Stmt::If(_, t, e) => {
            prune(t, live);
            prune(e, live);
            !(t.0.is_empty() && e.0.is_empty())
        }
    });
}

/// `let mut s_bar = 0.0; s_bar += 1.0;` becomes `let mut s_bar = 1.0;` (exact for a
/// non-zero literal: `0.0 + c == c`; a zero literal could be `-0.0`, so it is left alone).
fn fold_literal_seed(b: &mut Block) {
    let mut k = 0;
    while k + 1 < b.0.len() {
        let fold = match (&b.0[k], &b.0[k + 1]) {
            (Stmt::Mut(v, Some(Expr::Use(Operand::Float(z)))), Stmt::Assign(p, AssignOp::Add, Operand::Float(c)))
                if p.var == *v && p.idx.is_empty() && z.value == 0.0 && c.value != 0.0 =>
            {
                Some(Stmt::Mut(*v, Some(Expr::Use(Operand::Float(c.clone())))))
            }
            _ => None,
        };
        if let Some(s) = fold {
            b.0[k] = s;
            b.0.remove(k + 1);
        }
        k += 1;
    }
    for s in &mut b.0 {
        match s {
            Stmt::For(l) => fold_literal_seed(&mut l.body),
            Stmt::If(_, t, e) => {
                fold_literal_seed(t);
                fold_literal_seed(e);
            }
            _ => {}
        }
    }
}

/// `let t = [0.0; N]; let mut y = t;` (t used once) becomes `let mut y = [0.0; N];`.
fn fold_mut_init(f: &mut Func) {
    let mut uses: HashMap<VarId, usize> = HashMap::new();
    walk_stmts(&f.body, &mut |s| {
        let mut r = Vec::new();
        match s {
            Stmt::For(l) => r.extend(l.bound_vars()),
            Stmt::If(c, _, _) => r.extend(c.var()),
            s => stmt_reads(s, &mut r),
        }
        for v in r {
            *uses.entry(v).or_default() += 1;
        }
    });
    if let Some(v) = f.ret.var() {
        *uses.entry(v).or_default() += 1;
    }
    fn go(b: &mut Block, uses: &HashMap<VarId, usize>) {
        let mut out: Vec<Stmt> = Vec::new();
        for s in std::mem::take(&mut b.0) {
            match s {
                Stmt::Mut(v, Some(Expr::Use(Operand::Var(t)))) if uses.get(&t) == Some(&1) => {
                    if let Some(Stmt::Let(w, e)) = out.last() {
                        if *w == t && !matches!(e, Expr::Call(_)) {
                            let e = e.clone();
                            out.pop();
                            out.push(Stmt::Mut(v, Some(e)));
                            continue;
                        }
                    }
                    out.push(Stmt::Mut(v, Some(Expr::Use(Operand::Var(t)))));
                }
                Stmt::For(mut l) => {
                    go(&mut l.body, uses);
                    out.push(Stmt::For(l));
                }
                Stmt::If(c, mut t, mut e) => {
                    go(&mut t, uses);
                    go(&mut e, uses);
                    out.push(Stmt::If(c, t, e));
                }
                s => out.push(s),
            }
        }
        b.0 = out;
    }
    go(&mut f.body, &uses);
}

/// `let s = m;` (a snapshot of the mutable array `m`) whose only uses are element reads
/// `s[i]`, after which nothing in its block writes `m`: the reads take `m[i]` in place and
/// the copy goes (a reverse sweep's `let x_bar_1 = x_bar;` before its rows are read, the
/// basis of a Jacobian's chunk). The values read are the same: `m` holds what `s` copied
/// until the end of the block.
fn forward_final_snapshots(f: &mut Func) {
    // Every use of each variable as an operand other than an `Index` base (those keep
    // their snapshot), and the return value.
    let mut other_uses: HashSet<VarId> = HashSet::new();
    if let Some(v) = f.ret.var() {
        other_uses.insert(v);
    }
    walk_stmts(&f.body, &mut |s| {
        let mut ops = Vec::new();
        match s {
            Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => match e {
                Expr::Index(_, idx) => ops.extend(idx.iter().cloned()),
                e => ops.extend(expr_operands(e)),
            },
            Stmt::Assign(p, _, v) => {
                ops.extend(p.idx.iter().cloned());
                ops.push(v.clone());
                // A write through the snapshot's name is not a read of it, but it rules the
                // forwarding out.
                ops.push(Operand::Var(p.var));
            }
            Stmt::If(c, ..) => ops.push(c.clone()),
            Stmt::For(_) | Stmt::Mut(_, None) => {}
        }
        other_uses.extend(ops.iter().filter_map(Operand::var));
    });
    fn writes(s: &Stmt, m: VarId) -> bool {
        let mut w = false;
        walk_stmts(&Block(vec![s.clone()]), &mut |t| match t {
            Stmt::Assign(p, _, _) if p.var == m => w = true,
            Stmt::Mut(v, _) if *v == m => w = true,
            t if call_writes(t).contains(&m) => w = true,
            _ => {}
        });
        w
    }
    fn go(f: &Func, b: &mut Block, other_uses: &HashSet<VarId>) {
        let mut k = 0;
        while k < b.0.len() {
            let fwd = match &b.0[k] {
                Stmt::Let(s, Expr::Use(Operand::Var(m)))
                    if f.vars[*m].mutable
                        && !f.vars[*s].annotated
                        && matches!(f.vars[*m].ty, Ty::Array(..) | Ty::Slice(_))
                        && !other_uses.contains(s)
                        && !b.0[k + 1..].iter().any(|t| writes(t, *m)) =>
                {
                    Some((*s, *m))
                }
                _ => None,
            };
            if let Some((s, m)) = fwd {
                let mut rest = Block(b.0.split_off(k + 1));
                rename_index_bases(&mut rest, s, m);
                b.0.extend(rest.0);
            }
            match &mut b.0[k] {
                Stmt::For(l) => go(f, &mut l.body, other_uses),
                Stmt::If(_, t, e) => {
                    go(f, t, other_uses);
                    go(f, e, other_uses);
                }
                _ => {}
            }
            k += 1;
        }
    }
    let mut body = std::mem::take(&mut f.body);
    go(f, &mut body, &other_uses);
    f.body = body;
}

/// `Index(from, ..)` reads become `Index(to, ..)`.
fn rename_index_bases(b: &mut Block, from: VarId, to: VarId) {
    for s in &mut b.0 {
        match s {
            Stmt::Let(_, Expr::Index(v, _)) | Stmt::Mut(_, Some(Expr::Index(v, _))) if *v == from => *v = to,
            Stmt::For(l) => rename_index_bases(&mut l.body, from, to),
            Stmt::If(_, t, e) => {
                rename_index_bases(t, from, to);
                rename_index_bases(e, from, to);
            }
            _ => {}
        }
    }
}

/// A fresh zero accumulator of lanes: its first addition stores instead of reading the
/// zero back:
/// `let mut a = 0; .. a[i][j] += v` becomes `a[i][j] = 0.0 + v` where that assignment is
/// the first statement touching `a` and runs at most once per element (the loops between
/// them each index `a`, and nothing else in them touches it). `0.0 + v` is the addition
/// the accumulation did (the same bits, `-0.0` included); only the load goes, which is what
/// matters for the large accumulators of reverse sweeps on lanes (a cotangent of
/// `[[f64x4; 32]; 64]` is 64 KiB).
fn first_additions_store(f: &mut Func) {
    fn touches(s: &Stmt, a: VarId) -> bool {
        let mut r = Vec::new();
        stmt_reads(s, &mut r);
        let mut hit = r.contains(&a) || call_writes(s).contains(&a);
        walk_stmts(&Block(vec![s.clone()]), &mut |t| match t {
            Stmt::Assign(p, ..) if p.var == a => hit = true,
            Stmt::Mut(v, _) if *v == a => hit = true,
            _ => hit |= call_writes(t).contains(&a),
        });
        hit
    }
    /// The one assignment touching `a` in `s` (an addition, or a store it became),
    /// reached through loops whose indices it indexes by (each once; other indices are
    /// integer literals), if `s` is such a nest: its place runs over distinct elements.
    /// `loops`: the path of loop indices with their literal bounds, if they have them.
    fn only_write<'s>(
        s: &'s mut Stmt,
        a: VarId,
        loops: &mut Vec<(VarId, Option<(i128, i128)>)>,
    ) -> Option<&'s mut Stmt> {
        match s {
            Stmt::Assign(p, AssignOp::Add | AssignOp::Set, _) if p.var == a => {
                let idx: Vec<VarId> = p.idx.iter().filter_map(Operand::var).collect();
                let plain = p.idx.iter().all(|o| o.var().is_some() || matches!(o, Operand::Int(_)));
                let distinct = plain && idx.iter().collect::<HashSet<_>>().len() == idx.len();
                (distinct
                    && loops.iter().all(|l| idx.contains(&l.0))
                    && idx.iter().all(|i| loops.iter().any(|l| l.0 == *i)))
                .then_some(s)
            }
            Stmt::For(l) => {
                let mut inside = l.body.0.iter().enumerate().filter(|(_, t)| touches(t, a));
                let (k, _) = inside.next()?;
                if inside.next().is_some() {
                    return None;
                }
                loops.push((l.var, l.literal_bounds()));
                only_write(&mut l.body.0[k], a, loops)
            }
            _ => None,
        }
    }
    /// Whether two regions share no element (some axis's ranges do not meet).
    fn disjoint(a: &[(i128, i128)], b: &[(i128, i128)]) -> bool {
        a.iter().zip(b).any(|(x, y)| x.1 <= y.0 || y.1 <= x.0)
    }
    fn go(f: &mut Func, b: &mut Block) {
        let n = b.0.len();
        for k in 0..n {
            let zero = |o: &Operand| matches!(o, Operand::Float(l) if l.value == 0.0 && l.value.is_sign_positive());
            let a = match &b.0[k] {
                Stmt::Mut(a, Some(Expr::Zeros(_))) => *a,
                Stmt::Mut(a, Some(Expr::Use(z) | Expr::Splat(z))) if zero(z) => *a,
                _ => continue,
            };
            let mut elem = f.vars[a].ty.clone();
            let mut depth = 0;
            while let Ty::Array(e, _) = elem {
                elem = *e;
                depth += 1;
            }
            // (Lanes only: the accumulators of batched sweeps are the large ones, and the
            // in-place companions (`vjp::acc_companion`) read scalar accumulators as
            // additions only.)
            let scalar_ok = matches!(&elem, Ty::Lanes(e) if e.is_float());
            if !scalar_ok {
                continue;
            }
            // The nests touching `a` in turn: the first, then each whose elements none
            // before it touched (a loop peeled of its first iteration: `a[0][j] += ..`
            // after `a[i][j] += ..` over `i` in `1..n`), as long as they are such nests.
            let mut seen: Vec<Vec<(i128, i128)>> = Vec::new();
            let (mut from, mut first_nest) = (k + 1, true);
            while let Some(m) = (from..n).find(|&m| touches(&b.0[m], a)) {
                from = m + 1;
                let mut loops = Vec::new();
                let Some(Stmt::Assign(p, op, v)) = only_write(&mut b.0[m], a, &mut loops) else {
                    break;
                };
                if p.idx.len() != depth {
                    break;
                }
                let here = index_region(&p.idx, &loops);
                let first = std::mem::replace(&mut first_nest, false);
                let fresh = match &here {
                    Some(r) => first || seen.iter().all(|q| disjoint(q, r)),
                    None => first,
                };
                if !fresh {
                    break;
                }
                if *op == AssignOp::Set {
                    // (Already a store: its elements are taken.)
                    match here {
                        Some(r) => seen.push(r),
                        None => break,
                    }
                    continue;
                }
                let (p, v) = (p.clone(), v.clone());
                *op = AssignOp::Set;
                // The sum `0.0 + v` (zero lanes), bound before the store.
                let zero = f.new_var("zero", elem.clone(), false);
                let sum = f.new_var("t", elem.clone(), false);
                let mut stmts = vec![Stmt::Let(zero, Expr::Splat(Operand::float(0.0)))];
                stmts.push(Stmt::Let(sum, Expr::Prim(Prim::Add, vec![Operand::Var(zero), v])));
                stmts.push(Stmt::Assign(p, AssignOp::Set, Operand::Var(sum)));
                if matches!(b.0[m], Stmt::Assign(..)) {
                    b.0.splice(m..m + 1, stmts);
                    // (The block grew: the rest is handled when `go` sees it again.)
                    return go(f, b);
                }
                replace_assign(&mut b.0[m], a, &mut Some(stmts));
                match here {
                    Some(r) => seen.push(r),
                    None => break,
                }
            }
        }
        for s in &mut b.0 {
            match s {
                Stmt::For(l) => go(f, &mut l.body),
                Stmt::If(_, t, e) => {
                    go(f, t);
                    go(f, e);
                }
                _ => {}
            }
        }
    }
    /// Puts `stmts` in place of the `Set` assignment to `a` just made in `s`.
    fn replace_assign(s: &mut Stmt, a: VarId, stmts: &mut Option<Vec<Stmt>>) {
        let Stmt::For(l) = s else { return };
        let body = std::mem::take(&mut l.body.0);
        for t in body {
            match t {
                Stmt::Assign(p, AssignOp::Set, _) if p.var == a && stmts.is_some() => {
                    l.body.0.extend(stmts.take().unwrap_or_default());
                }
                mut t => {
                    replace_assign(&mut t, a, stmts);
                    l.body.0.push(t);
                }
            }
        }
    }
    let mut body = std::mem::take(&mut f.body);
    go(f, &mut body);
    f.body = body;
}
