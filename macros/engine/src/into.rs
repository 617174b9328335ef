//! The caller-buffer form of a generated function: `f_jacrev_into(x, &mut out)` writes what
//! `f_jacrev(x)` returns into `out` and returns nothing.
//!
//! A Jacobian or Hessian of a 1000-element array is 8 MB: returned by value it overflows
//! a 2 MiB thread (rayon workers, test threads). The `_into` form holds no local of the
//! result's size: the accumulators the by-value form returns become places in `out`.
//!
//! ```text
//! fn f_jacrev(x: [f64; N]) -> [[f64; N]; M] {     fn f_jacrev_into(x: [f64; N], out: &mut [[f64; N]; M]) {
//!     let mut jac = [[0.0; N]; M];                     ::fluxion::__private::fill_zero(&mut (*out));
//!     for k0 in 0..M { ..; jac[k0] = x_bar; }          for k0 in 0..M { ..; (*out)[k0] = x_bar; }
//!     jac                                          }
//! }
//! ```
//!
//! Components of the result that are not accumulators (a value, an aux output) are
//! assigned to their place in `out` at the end.

use std::collections::HashSet;

use crate::ir::*;

/// The `_into` form of `g`, named `name`.
pub fn into_form(g: &Func, name: String) -> Func {
    into_form_with(g, name, false)
}

/// [`into_form`]; with `by_size`, a tape whose storage rustc picks ([`Storage::BySize`])
/// is also a place in `out`, where the result's type spells that choice
/// ([`Ty::Tape`], the residuals of a split forward half).
pub fn into_form_with(g: &Func, name: String, by_size: bool) -> Func {
    let mut h = g.clone();
    h.name = name;
    let ret_ty = g.ret_ty.clone();
    let out = h.new_var("out", ret_ty.clone(), true);
    h.vars[out].storage = Storage::OutParam;
    h.params.push(Param {
        var: out,
        ty: ret_ty.clone(),
        by_ref: false,
        span: SrcSpan(proc_macro2::Span::call_site()),
    });
    let top = g.body.0.clone();
    let def = |v: VarId| top.iter().position(|s| matches!(s, Stmt::Let(w, _) if *w == v));
    // The components: the fields of a tuple built at the end, or the whole result.
    let mut dead: Vec<usize> = Vec::new();
    let comps: Vec<(Option<usize>, Operand, Ty)> = match (&ret_ty, &g.ret) {
        (Ty::Tuple(ts), Operand::Var(r)) => match def(*r).map(|i| (i, &top[i])) {
            Some((i, Stmt::Let(_, Expr::Tuple(ops)))) if ops.len() == ts.len() => {
                dead.push(i);
                ops.iter()
                    .zip(ts)
                    .enumerate()
                    .map(|(k, (o, t))| (Some(k), o.clone(), t.clone()))
                    .collect()
            }
            _ => vec![(None, g.ret.clone(), ret_ty.clone())],
        },
        _ => vec![(None, g.ret.clone(), ret_ty.clone())],
    };
    let mut used_accs: HashSet<VarId> = HashSet::new();
    let mut tail = Vec::new();
    for (field, op, ty) in comps {
        // `acc` or `let v = acc;` at the top level, with `acc` a top-level `let mut` that
        // nothing touches afterwards: `acc` lives in `out`.
        // The accumulator's type is the component's, and it is stored as the component is.
        let fits = |v: VarId| match g.vars[v].storage {
            Storage::Stack => g.vars[v].ty == ty,
            Storage::BySize => by_size && ty == Ty::Tape(Box::new(g.vars[v].ty.clone())),
            _ => false,
        };
        let returned_acc = op.var().filter(|v| {
            top.iter().any(|s| matches!(s, Stmt::Mut(w, _) if w == v)) && fits(*v) && !used_accs.contains(v)
        });
        if let Some(acc) = returned_acc {
            used_accs.insert(acc);
            h.vars[acc].storage = Storage::Out(field);
            continue;
        }
        let acc = op.var().and_then(|v| {
            let i = def(v)?;
            let Stmt::Let(_, Expr::Use(Operand::Var(acc))) = &top[i] else {
                return None;
            };
            let declared = top.iter().any(|s| matches!(s, Stmt::Mut(w, _) if w == acc));
            let untouched = top[i + 1..].iter().all(|s| !stmt_mentions(s, *acc));
            // `v` itself read only by the result (its `let` goes).
            let only_returned = top
                .iter()
                .enumerate()
                .all(|(k, s)| k == i || dead.contains(&k) || !stmt_mentions(s, v));
            if !only_returned {
                return None;
            }
            let once = fits(*acc) && g.vars[v].ty == g.vars[*acc].ty && !used_accs.contains(acc);
            (declared && untouched && once).then_some((i, *acc))
        });
        match acc {
            Some((i, acc)) => {
                dead.push(i);
                used_accs.insert(acc);
                h.vars[acc].storage = Storage::Out(field);
            }
            None => {
                let slot = h.new_var("out", ty, true);
                h.vars[slot].storage = Storage::Out(field);
                tail.push(Stmt::Assign(Place { var: slot, idx: vec![] }, AssignOp::Set, op));
            }
        }
    }
    let mut body: Vec<Stmt> = h
        .body
        .0
        .iter()
        .enumerate()
        .filter(|(i, _)| !dead.contains(i))
        .map(|(_, s)| s.clone())
        .collect();
    body.extend(tail);
    // A place whose every element is stored before anything reads it needs no zeros.
    for k in 0..body.len() {
        let Stmt::Mut(v, Some(Expr::Zeros(ty))) = &body[k] else {
            continue;
        };
        let (v, ty) = (*v, ty.clone());
        if !matches!(h.vars[v].storage, Storage::Out(_)) {
            continue;
        }
        let first = body[k + 1..].iter().find(|s| stmt_mentions(s, v));
        if first.is_some_and(|s| stores_every_element(s, v, &ty, &mut Vec::new()))
            || stores_cover(&body[k + 1..], v, &ty)
        {
            body[k] = Stmt::Mut(v, None);
        }
    }
    h.body = Block(body);
    h.ret = Operand::Unit;
    h.ret_ty = Ty::Unit;
    h
}

/// Moves the outputs of a `vmap` kernel's `_into` form (from [`into_form`]) that only
/// element stores touch into the chunk's samples ([`Storage::Rows`]): a place in `out`
/// (field `k`, or the whole result) that `eligible` accepts, of a type that is arrays of
/// float lanes, whose every mention is its declaration (uninitialised or zeros) or a
/// store `v[i]..[j] = x` of one element or of a row held in a variable, never a read. Each moved output gets a parameter
/// after `out` (in the order of the fields) holding the samples, of the per-sample type
/// `sample(field)` gives. Returns the fields moved, in order.
pub fn lane_rows(h: &mut Func, sample: &dyn Fn(Option<usize>) -> Option<Ty>) -> Vec<Option<usize>> {
    let mut moved = Vec::new();
    for v in 0..h.vars.len() {
        let Storage::Out(field) = h.vars[v].storage else {
            continue;
        };
        let ty = h.vars[v].ty.clone();
        let mut depth = 0;
        let mut t = &ty;
        while let Ty::Array(e, _) = t {
            depth += 1;
            t = e;
        }
        let lanes_of_floats = matches!(t, Ty::Lanes(e) if matches!(**e, Ty::Float(_)));
        if depth == 0 || !lanes_of_floats || !only_element_stores(&h.body, v, depth) {
            continue;
        }
        if sample(field).is_none() {
            continue;
        }
        h.vars[v].storage = Storage::Rows(field);
        moved.push(field);
    }
    // The parameters, in the order of the fields.
    moved.sort();
    for &field in &moved {
        let Some(ty) = sample(field) else {
            continue;
        };
        let rows = h.new_var("rows", ty.clone(), true);
        h.vars[rows].storage = Storage::Rows(field);
        h.params.push(Param {
            var: rows,
            ty,
            by_ref: false,
            span: SrcSpan(proc_macro2::Span::call_site()),
        });
    }
    moved
}

/// Whether every statement of `b` that mentions `v` is its declaration (uninitialised or
/// zeros) or a store of one element (`depth` indices), or of a row (fewer) held in a
/// variable, of a value other than `v`.
fn only_element_stores(b: &Block, v: VarId, depth: usize) -> bool {
    b.0.iter().all(|s| match s {
        Stmt::Mut(w, init) if *w == v => matches!(init, None | Some(Expr::Zeros(_))),
        // One element, or a whole row (an array of them) from a value.
        Stmt::Assign(p, AssignOp::Set, x) if p.var == v => {
            (p.idx.len() == depth || x.var().is_some())
                && p.idx.len() <= depth
                && x.var() != Some(v)
                && p.idx.iter().all(|i| i.var() != Some(v))
        }
        Stmt::For(l) => only_element_stores(&l.body, v, depth),
        Stmt::If(c, a, e) => c.var() != Some(v) && only_element_stores(a, v, depth) && only_element_stores(e, v, depth),
        other => !stmt_mentions(other, v),
    })
}

/// Whether the first statements of `b` touching `v` (of type `ty`, arrays of literal
/// lengths) are nests of loops of literal bounds, each storing `v[i]..[j] = x` (an
/// element, or a whole row) once per place (indices: the nest's loop indices, each once,
/// or integer literals), whose elements together are all of `v`'s: a loop peeled of its
/// first iteration stores `v[0][j]` and then `v[i][j]` for `i` in `1..n`; a Jacobian's
/// rows `v[k] = row` for `k` in `0..m`.
fn stores_cover(b: &[Stmt], v: VarId, ty: &Ty) -> bool {
    let mut full = Vec::new();
    let mut t = ty;
    while let Ty::Array(e, n) = t {
        match n.lit() {
            Some(n) => full.push((0, n)),
            None => return false,
        }
        t = e;
    }
    if full.is_empty() || matches!(t, Ty::Array(..) | Ty::Tuple(_) | Ty::Matrix { .. }) {
        return false;
    }
    let mut regions = Vec::new();
    for s in b.iter().filter(|s| stmt_mentions(s, v)) {
        match set_region(s, v, &mut Vec::new()) {
            // A store of a whole row (fewer indices) covers the axes it leaves out.
            Some(mut r) if r.len() <= full.len() => {
                r.extend_from_slice(&full[r.len()..]);
                regions.push(r)
            }
            _ => break,
        }
        if covers(&regions, &full) {
            return true;
        }
    }
    false
}

/// The elements one nest stores into `v` ([`stores_cover`]): per axis, the half-open range
/// of its index (`loops`: the nest's indices and literal bounds so far).
fn set_region(s: &Stmt, v: VarId, loops: &mut Vec<(VarId, Option<(i128, i128)>)>) -> Option<Vec<(i128, i128)>> {
    match s {
        Stmt::Assign(p, AssignOp::Set, x) if p.var == v && x.var() != Some(v) => {
            let vars: Vec<VarId> = p.idx.iter().filter_map(Operand::var).collect();
            let distinct = vars.iter().collect::<HashSet<_>>().len() == vars.len();
            let all_loops = loops.iter().all(|l| vars.contains(&l.0));
            if !distinct || !all_loops {
                return None;
            }
            index_region(&p.idx, loops)
        }
        Stmt::For(l) => {
            let bounds = l.literal_bounds()?;
            let mut touching = l.body.0.iter().filter(|t| stmt_mentions(t, v));
            let (Some(only), None) = (touching.next(), touching.next()) else {
                return None;
            };
            loops.push((l.var, Some(bounds)));
            set_region(only, v, loops)
        }
        _ => None,
    }
}

/// Whether the boxes `regions` (half-open ranges per axis) cover the box `full`.
fn covers(regions: &[Vec<(i128, i128)>], full: &[(i128, i128)]) -> bool {
    let Some(&(lo, hi)) = full.first() else {
        return !regions.is_empty();
    };
    if lo >= hi {
        return true;
    }
    let mut cuts = vec![lo, hi];
    for r in regions {
        cuts.extend([r[0].0, r[0].1].into_iter().filter(|c| lo < *c && *c < hi));
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).all(|w| {
        let inside: Vec<Vec<(i128, i128)>> = regions
            .iter()
            .filter(|r| r[0].0 <= w[0] && w[1] <= r[0].1)
            .map(|r| r[1..].to_vec())
            .collect();
        covers(&inside, &full[1..])
    })
}

/// Whether `s` stores every element of `v` (of type `ty`) before anything reads it: a nest
/// of loops over whole axes (`for i in 0..N`, either direction) whose only statement
/// touching `v` is `v[i][j].. = x` with the nest's indices, one per axis, in order.
/// (`loops`: the indices and lengths of the loops around `s` in the nest.)
fn stores_every_element(s: &Stmt, v: VarId, ty: &Ty, loops: &mut Vec<(VarId, CExpr)>) -> bool {
    match s {
        Stmt::Assign(p, AssignOp::Set, _) if p.var == v => {
            let mut axes = Vec::new();
            let mut t = ty;
            while let Ty::Array(e, n) = t {
                axes.push(n.clone());
                t = e;
            }
            !matches!(t, Ty::Array(..) | Ty::Tuple(_) | Ty::Matrix { .. })
                && p.idx.len() == axes.len()
                && loops.len() == axes.len()
                && p.idx
                    .iter()
                    .zip(loops.iter())
                    .zip(&axes)
                    .all(|((i, (l, n)), a)| i.var() == Some(*l) && n == a)
        }
        Stmt::For(l) => {
            let whole = l.static_lo().and_then(|lo| lo.lit()) == Some(0);
            let Some(hi) = l.static_hi().filter(|_| whole) else {
                return false;
            };
            let mut touching = l.body.0.iter().filter(|t| stmt_mentions(t, v));
            let (Some(only), None) = (touching.next(), touching.next()) else {
                return false;
            };
            loops.push((l.var, hi));
            stores_every_element(only, v, ty, loops)
        }
        _ => false,
    }
}

pub(crate) fn stmt_mentions(s: &Stmt, v: VarId) -> bool {
    let mut reads = Vec::new();
    stmt_reads(s, &mut reads);
    reads.contains(&v)
        || match s {
            Stmt::Assign(p, _, _) => p.var == v,
            Stmt::For(l) => l.body.0.iter().any(|s| stmt_mentions(s, v)),
            Stmt::If(_, a, b) => a.0.iter().chain(&b.0).any(|s| stmt_mentions(s, v)),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::covers;

    /// `covers` against boxes that tile, overlap, leave a gap, or lie outside the array.
    #[test]
    fn covers_is_exact() {
        let full = [(0, 4), (0, 3)];
        // Tiles: rows 0 and 1..4.
        assert!(covers(&[vec![(0, 1), (0, 3)], vec![(1, 4), (0, 3)]], &full));
        // Overlapping.
        assert!(covers(&[vec![(0, 3), (0, 3)], vec![(2, 4), (0, 3)]], &full));
        // A gap in the second axis of row 2.
        assert!(!covers(
            &[vec![(0, 2), (0, 3)], vec![(2, 4), (0, 2)], vec![(3, 4), (2, 3)]],
            &full
        ));
        // Boxes beyond the array take nothing away.
        assert!(covers(
            &[vec![(0, 2), (0, 3)], vec![(2, 4), (0, 3)], vec![(6, 8), (0, 3)]],
            &full
        ));
        // Nothing covers nothing but an empty array.
        assert!(!covers(&[], &full));
        assert!(covers(&[], &[(0, 0)]));
    }
}
