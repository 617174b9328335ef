//! Tapes: which values of a loop or branch body the reverse sweep reads, which are
//! recomputed instead, how many slots each tape has and where it lives (stack or heap).

use super::*;

pub(super) fn reads_direct(s: &Stmt) -> Vec<VarId> {
    let mut out = Vec::new();
    match s {
        Stmt::For(_) => {}
        Stmt::If(c, _, _) => out.extend(c.var()),
        s => stmt_reads(s, &mut out),
    }
    out
}

impl Rx<'_> {
    pub(super) fn prewalk(&mut self, b: &Block, loops: Vec<(VarId, Option<CExpr>, SrcSpan)>) {
        let id = self.blocks.len();
        let top_level = id == 0;
        self.blocks.push(BlockInfo {
            loops: loops.clone(),
            top: self.cur_top,
        });
        self.block_ids.insert(b as *const Block, id);
        for (k, s) in b.0.iter().enumerate() {
            if top_level {
                self.cur_top = k;
            }
            let top = self.cur_top;
            let wrote = |v: VarId, lw: &mut HashMap<VarId, usize>| {
                let e = lw.entry(v).or_insert(top);
                *e = (*e).max(top);
            };
            for r in reads_direct(s) {
                if self.def_block.get(&r).is_some_and(|d| *d != id) {
                    self.nested_use.insert(r);
                }
            }
            let here = || loops.iter().map(|l| l.0).collect::<Vec<VarId>>();
            match s {
                Stmt::Let(v, _) => {
                    self.def_block.insert(*v, id);
                    for w in call_writes(s) {
                        self.assigned_in.entry(w).or_default().push(here());
                        wrote(w, &mut self.last_write);
                    }
                }
                Stmt::Mut(v, _) => {
                    self.def_block.insert(*v, id);
                    self.assigned_in.entry(*v).or_default().push(here());
                    wrote(*v, &mut self.last_write);
                }
                Stmt::Assign(p, _, _) => {
                    self.assigned_in.entry(p.var).or_default().push(here());
                    wrote(p.var, &mut self.last_write);
                }
                Stmt::For(l) => {
                    let mut inner = loops.clone();
                    // A loop with a run-time bound has no extent: its tapes grow (`None`).
                    let extent = match (l.static_lo(), l.static_hi()) {
                        (Some(lo), Some(hi)) => {
                            // A loop from a negative literal (`for k in -2..3`) tapes at
                            // `k - lo`, `hi - lo` slots.
                            let negative = match &lo {
                                CExpr::Lit(v) => *v < 0,
                                CExpr::Bin('-', a, _) => a.lit() == Some(0),
                                _ => false,
                            };
                            if negative {
                                self.offsets.insert(l.var, lo.clone());
                            }
                            Some(match (lo.lit(), hi.lit()) {
                                _ if !negative => hi,
                                (Some(lo), Some(hi)) => CExpr::Lit(hi - lo),
                                _ => CExpr::Bin('-', Box::new(hi), Box::new(lo)),
                            })
                        }
                        _ => None,
                    };
                    inner.push((l.var, extent, l.span));
                    let child = self.blocks.len();
                    self.def_block.insert(l.var, child);
                    self.prewalk(&l.body, inner);
                }
                Stmt::If(_, t, e) => {
                    self.prewalk(t, loops.clone());
                    self.prewalk(e, loops.clone());
                }
            }
        }
    }

    pub(super) fn bid(&self, b: &Block) -> usize {
        self.block_ids.get(&(b as *const Block)).copied().unwrap_or(0)
    }

    /// Tapes the values of a nested block that its reverse reads, and renames them (and the
    /// loop variable) to fresh variables bound at the top of the reverse block.
    pub(super) fn close_block(
        &mut self,
        blk: &Block,
        rev: Vec<Stmt>,
        loop_var: Option<(VarId, VarId)>,
    ) -> Result<Vec<Stmt>, Diag> {
        let bid = self.bid(blk);
        let mut reads = Vec::new();
        for s in &rev {
            stmt_reads(s, &mut reads);
            if let Stmt::Let(_, Expr::ZeroLike(o)) | Stmt::Mut(_, Some(Expr::ZeroLike(o))) = s {
                reads.extend(o.var());
            }
        }
        let mut needed: Vec<VarId> = Vec::new();
        for s in &blk.0 {
            if let Stmt::Let(v, _) = s {
                if reads.contains(v) && !needed.contains(v) {
                    needed.push(*v);
                }
            }
        }
        let loops = self.blocks[bid].loops.clone();
        let mut rename: HashMap<VarId, VarId> = HashMap::new();
        if let Some((old, new)) = loop_var {
            rename.insert(old, new);
        }
        // Values cheap to recompute from what the reverse sweep sees are recomputed, not
        // taped: reads of immutable arrays and integer arithmetic on indices and constants.
        let defined_here: HashSet<VarId> = blk
            .0
            .iter()
            .filter_map(|s| if let Stmt::Let(v, _) = s { Some(*v) } else { None })
            .collect();
        //
        // A split call `(y, r) = g::vjp_fwd(x)` is run again in the reverse sweep, with what
        // is computed from its results: its residuals are never taped (they can be large,
        // and of a type that has no zero to fill a tape with); its arguments are taped
        // where they cannot be recomputed. Where nothing else reads the call in the forward
        // sweep (a gradient that does not return the value), that call is then dead, and
        // `g`'s forward pass runs once per step, in the reverse sweep, beside `vjp_bwd`.
        let mut recomputable: HashMap<VarId, Expr> = HashMap::new();
        let mut from_call: HashSet<VarId> = HashSet::new();
        // An array no statement after this one (of the function's body) writes: frozen
        // here, read again by the reverse sweep (an inner gradient's tapes and activations
        // in a second derivative, which would otherwise be copied onto tapes of their own).
        let top = self.blocks[bid].top;
        let frozen = |a: VarId| self.last_write.get(&a).is_some_and(|w| *w < top);
        for s in &blk.0 {
            let Stmt::Let(v, e) = s else { continue };
            let vars = &self.g.vars;
            let ok_op = |o: &Operand| match o {
                Operand::Var(w) => !vars[*w].mutable && (!defined_here.contains(w) || recomputable.contains_key(w)),
                _ => true,
            };
            // Operands of a recomputed call, or of a value computed from one: taped if
            // they cannot be recomputed themselves.
            let immutable = |o: &Operand| o.var().is_none_or(|w| !vars[w].mutable);
            let ops = expr_operands(e);
            let derived = ops.iter().any(|o| o.var().is_some_and(|w| from_call.contains(&w)));
            let ok = match e {
                Expr::Call(c) if c.modes == [Mode::VjpFwd] => ops.iter().all(immutable),
                Expr::Call(_) => false,
                _ if derived => ops.iter().all(immutable),
                Expr::Index(a, idx) => (ok_op(&Operand::Var(*a)) || frozen(*a)) && idx.iter().all(ok_op),
                Expr::Prim(Prim::Add | Prim::Sub | Prim::Mul | Prim::Div | Prim::Rem, xs) => {
                    vars[*v].ty.is_int() && xs.iter().all(ok_op)
                }
                Expr::Cast(a, _) => self.g.ty_of(a).is_int() && ok_op(a),
                _ => false,
            };
            if ok {
                if derived || matches!(e, Expr::Call(_)) {
                    from_call.insert(*v);
                }
                recomputable.insert(*v, e.clone());
            }
        }
        // Which enclosing loops each value depends on: a value is taped once per iteration
        // of those loops only (a loop-invariant value: one slot), never once per step.
        // - A loop's index depends on that loop alone (bounds are constants): `h[j]` in
        //   `for j` inside `for i`, with `h` unchanged there, has one slot per `j`.
        // - A value defined in an enclosing block depends (at most) on the loops around it.
        // - A mutable variable changes only in the loops around its assignments: an
        //   accumulator assigned in the body of `for i` but not in `for j` is the same for
        //   every `j`.
        let full = loops.len();
        let prefix = |n: usize| (0..full).map(|k| k < n).collect::<Vec<bool>>();
        let changes_within = |w: VarId| match self.assigned_in.get(&w) {
            Some(sites) => prefix(
                sites
                    .iter()
                    .map(|s| s.iter().zip(&loops).take_while(|(a, b)| **a == b.0).count())
                    .max()
                    .unwrap_or(0),
            ),
            None => prefix(full),
        };
        let mut depends: HashMap<VarId, Vec<bool>> = HashMap::new();
        for s in &blk.0 {
            let Stmt::Let(v, e) = s else { continue };
            let mut mask = vec![false; full];
            for w in expr_operands(e).iter().filter_map(Operand::var) {
                let m = match depends.get(&w) {
                    Some(m) => m.clone(),
                    None if self.g.vars[w].mutable => changes_within(w),
                    None => match loops.iter().position(|l| l.0 == w) {
                        Some(k) => (0..full).map(|j| j == k).collect(),
                        None => prefix(
                            self.def_block
                                .get(&w)
                                .and_then(|b| self.blocks.get(*b))
                                .map_or(full, |b| b.loops.len()),
                        ),
                    },
                };
                for (a, b) in mask.iter_mut().zip(m) {
                    *a |= b;
                }
            }
            depends.insert(*v, mask);
        }
        // A value stored as it is into an array written nowhere else, one slot per
        // iteration of the loops it depends on (`h[i] = t`, an inner gradient's own tape):
        // read again from the array, not taped a second time.
        let loop_of = |o: &Operand| -> Option<usize> {
            let w = o.var()?;
            let w = blk
                .0
                .iter()
                .find_map(|s| match s {
                    Stmt::Let(x, Expr::Cast(Operand::Var(l), _) | Expr::Use(Operand::Var(l))) if *x == w => Some(*l),
                    _ => None,
                })
                .unwrap_or(w);
            loops.iter().position(|l| l.0 == w)
        };
        for s in &blk.0 {
            let Stmt::Assign(p, AssignOp::Set, Operand::Var(v)) = s else {
                continue;
            };
            if recomputable.contains_key(v) || !defined_here.contains(v) || p.idx.is_empty() {
                continue;
            }
            let single = self.assigned_in.get(&p.var).is_some_and(|sites| sites.len() == 2)
                && self.g.vars[p.var].mutable
                && !self.g.params.iter().any(|q| q.var == p.var);
            let covered: Option<Vec<usize>> = p.idx.iter().map(loop_of).collect();
            let (Some(covered), Some(mask)) = (covered, depends.get(v)) else {
                continue;
            };
            let slots = mask.iter().enumerate().all(|(k, on)| !on || covered.contains(&k));
            let idx_ok = p.idx.iter().all(|o| match o {
                Operand::Var(w) => !self.g.vars[*w].mutable,
                _ => true,
            });
            if single && slots && idx_ok {
                recomputable.insert(*v, Expr::Index(p.var, p.idx.clone()));
            }
        }
        // Close the needed set over the recomputed values' dependencies.
        let close = |want: &mut HashSet<VarId>, recomputable: &HashMap<VarId, Expr>| loop {
            let before = want.len();
            for v in want.clone() {
                if let Some(e) = recomputable.get(&v) {
                    for o in expr_operands(e) {
                        if let Some(w) = o.var() {
                            if defined_here.contains(&w) {
                                want.insert(w);
                            }
                        }
                    }
                }
            }
            if want.len() == before {
                break;
            }
        };
        let mut want: HashSet<VarId> = needed.iter().copied().collect();
        close(&mut want, &recomputable);
        // Short chains of float `+`, `-`, `*` and negation on values the reverse sweep has
        // anyway (recomputed, taped for another read, or defined outside the block) are
        // recomputed there, not taped: `1 - h * h` beside the taped (or frozen) `h`, `c * t`
        // beside the taped `c`. They take no tape of their own and add none (an operand
        // defined here is recomputed or wanted already), and give the same bits. A reverse
        // pass differentiated again keeps a third fewer tapes this way.
        const CHEAP_DEPTH: usize = 3;
        let mut depth: HashMap<VarId, usize> = HashMap::new();
        loop {
            let mut changed = false;
            for s in &blk.0 {
                let Stmt::Let(v, e @ Expr::Prim(Prim::Add | Prim::Sub | Prim::Mul | Prim::Neg, xs)) = s else {
                    continue;
                };
                if recomputable.contains_key(v) || !self.g.vars[*v].ty.is_float() {
                    continue;
                }
                let vars = &self.g.vars;
                let mut d = 1;
                let has = xs.iter().all(|o| match o {
                    Operand::Var(w) => {
                        d = d.max(depth.get(w).map_or(1, |k| k + 1));
                        !vars[*w].mutable
                            && !from_call.contains(w)
                            && (!defined_here.contains(w) || recomputable.contains_key(w) || want.contains(w))
                    }
                    _ => true,
                });
                if has && d <= CHEAP_DEPTH {
                    recomputable.insert(*v, e.clone());
                    depth.insert(*v, d);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
            close(&mut want, &recomputable);
        }
        let needed: Vec<VarId> = blk
            .0
            .iter()
            .filter_map(|s| if let Stmt::Let(v, _) = s { Some(*v) } else { None })
            .filter(|v| want.contains(v))
            .collect();
        // In the block's order, except that a value read again from an array comes after
        // the index it reads at (defined after it, beside the store).
        let mut ordered: Vec<VarId> = Vec::new();
        while ordered.len() < needed.len() {
            let before = ordered.len();
            for v in &needed {
                let ready = recomputable.get(v).is_none_or(|e| {
                    expr_operands(e)
                        .iter()
                        .filter_map(Operand::var)
                        .all(|w| !needed.contains(&w) || ordered.contains(&w))
                });
                if !ordered.contains(v) && ready {
                    ordered.push(*v);
                }
            }
            if ordered.len() == before {
                // (No order: the rest as they come; not reached, recomputations read
                // only values defined before them or indices.)
                ordered.extend(
                    needed
                        .iter()
                        .filter(|v| !ordered.contains(v))
                        .copied()
                        .collect::<Vec<_>>(),
                );
            }
        }
        let mut reads_stmts = Vec::new();
        for v in ordered {
            let info = self.g.vars[v].clone();
            if let Some(e) = recomputable.get(&v) {
                let nv = self.g.new_var(info.name.clone(), info.ty.clone(), false);
                reads_stmts.push(Stmt::Let(nv, e.clone()));
                rename.insert(v, nv);
                continue;
            }
            // A bound naming a user constant may have any integer type (`const K: i32`):
            // such loops index their tapes with `i as usize`, sized `(K as usize)`.
            let cast = |hi: &CExpr| {
                let mut ps = Vec::new();
                hi.paths(&mut ps);
                !ps.is_empty() && !ps.iter().any(|p| self.const_generics.contains(p))
            };
            let mask = depends.get(&v).cloned().unwrap_or_else(|| prefix(full));
            let loops: Vec<(VarId, Option<CExpr>, SrcSpan)> = loops
                .iter()
                .zip(&mask)
                .filter(|(_, on)| **on)
                .map(|(l, _)| l.clone())
                .collect();
            if loops.iter().any(|l| l.1.is_none()) {
                // Inside a loop with a run-time trip count: a tape that grows by one slot
                // per execution of the block, read back counting down.
                let (read, nv) = self.growing_tape(v);
                reads_stmts.extend(read);
                rename.insert(v, nv);
                continue;
            }
            let loops: Vec<(VarId, CExpr, SrcSpan)> =
                loops.into_iter().filter_map(|(i, n, s)| n.map(|n| (i, n, s))).collect();
            let loops = &loops[..];
            let mut tty = info.ty.clone();
            for (_, hi, span) in loops.iter().rev() {
                let len = match self.tape_len(hi) {
                    Ok(len) if cast(hi) => CExpr::AsUsize(Box::new(len)),
                    Ok(len) => len,
                    Err(d) => return Err(d.at(span.0)),
                };
                tty = Ty::Array(Box::new(tty), len);
            }
            let tape = self.g.new_var(format!("tape_{}", info.name), tty.clone(), true);
            self.g.vars[tape].storage = self.storage(&tty);
            self.tape_decls.push(Stmt::Mut(tape, Some(Expr::Zeros(tty))));
            let usize_ty = Ty::Int(Some("usize".into()));
            let offsets = &self.offsets;
            let index = |g: &mut Func, stmts: &mut Vec<Stmt>| -> Vec<Operand> {
                loops
                    .iter()
                    .map(|(i, hi, _)| {
                        if let Some(lo) = offsets.get(i) {
                            let name = format!("{}_index", g.vars[*i].name);
                            let d = g.new_var(name.clone(), Ty::Int(None), false);
                            let lo = match lo {
                                CExpr::Lit(v) => Operand::Int(*v),
                                c => Operand::Const(c.clone()),
                            };
                            stmts.push(Stmt::Let(d, Expr::Prim(Prim::Sub, vec![Operand::Var(*i), lo])));
                            let iu = g.new_var(name, usize_ty.clone(), false);
                            stmts.push(Stmt::Let(iu, Expr::Cast(Operand::Var(d), usize_ty.clone())));
                            Operand::Var(iu)
                        } else if cast(hi) {
                            let iu = g.new_var(format!("{}_index", g.vars[*i].name), usize_ty.clone(), false);
                            stmts.push(Stmt::Let(iu, Expr::Cast(Operand::Var(*i), usize_ty.clone())));
                            Operand::Var(iu)
                        } else {
                            Operand::Var(*i)
                        }
                    })
                    .collect()
            };
            let mut write = Vec::new();
            let widx = index(self.g, &mut write);
            write.push(Stmt::Assign(
                Place { var: tape, idx: widx },
                AssignOp::Set,
                Operand::Var(v),
            ));
            self.tape_writes.insert(v, write);
            let ridx = index(self.g, &mut reads_stmts);
            let nv = self.g.new_var(info.name.clone(), info.ty.clone(), false);
            reads_stmts.push(if ridx.is_empty() {
                Stmt::Let(nv, Expr::Use(Operand::Var(tape)))
            } else {
                Stmt::Let(nv, Expr::Index(tape, ridx))
            });
            rename.insert(v, nv);
        }
        // Tape reads index with the forward loop variables; the renaming below maps the
        // innermost one, enclosing blocks map theirs when they are closed.
        reads_stmts.extend(rev);
        let mut blk_out = Block(reads_stmts);
        rename_block(&mut blk_out, &rename);
        // The tape reads themselves must keep reading the tapes, not renamed values.
        Ok(blk_out.0)
    }

    /// A growing tape of `v` (a value of a loop with a run-time trip count, or inside one):
    /// the forward sweep writes `v` at the tape's running length `k` (a push) and counts up;
    /// the reverse sweep, which runs the iterations in the opposite order, counts down and
    /// reads slot `k`. Gives the reverse block's read and the variable it binds.
    ///
    /// ```text
    /// let mut tape_t = Vec::new(); let mut tape_t_len = 0;          // before the sweeps
    /// let t = ..; tape_t.push(t); tape_t_len += 1;                  // forward
    /// tape_t_len -= 1; let k = tape_t_len; let t = tape_t[k];       // reverse
    /// ```
    fn growing_tape(&mut self, v: VarId) -> (Vec<Stmt>, VarId) {
        let info = self.g.vars[v].clone();
        let usize_ty = Ty::Int(Some("usize".into()));
        let tty = Ty::Slice(Box::new(info.ty.clone()));
        let tape = self.g.new_var(format!("tape_{}", info.name), tty.clone(), true);
        self.g.vars[tape].storage = Storage::Growing;
        let len = self
            .g
            .new_var(format!("tape_{}_len", info.name), usize_ty.clone(), true);
        self.tape_decls.push(Stmt::Mut(tape, Some(Expr::Zeros(tty))));
        self.tape_decls.push(Stmt::Mut(len, Some(Expr::Use(Operand::Int(0)))));
        let one = Operand::Int(1);
        let kw = self.g.new_var("k", usize_ty.clone(), false);
        let write = vec![
            Stmt::Let(kw, Expr::Use(Operand::Var(len))),
            Stmt::Assign(
                Place {
                    var: tape,
                    idx: vec![Operand::Var(kw)],
                },
                AssignOp::Set,
                Operand::Var(v),
            ),
            Stmt::Assign(Place { var: len, idx: vec![] }, AssignOp::Add, one.clone()),
        ];
        self.tape_writes.insert(v, write);
        let kr = self.g.new_var("k", usize_ty, false);
        let nv = self.g.new_var(info.name.clone(), info.ty.clone(), false);
        let read = vec![
            Stmt::Assign(Place { var: len, idx: vec![] }, AssignOp::Sub, one),
            Stmt::Let(kr, Expr::Use(Operand::Var(len))),
            Stmt::Let(nv, Expr::Index(tape, vec![Operand::Var(kr)])),
        ];
        (read, nv)
    }

    /// Where a tape of type `t` lives: on the stack up to [`TAPE_STACK_BYTES`], on the heap
    /// above; where the sizes are named constants, rustc decides from their values.
    pub(super) fn storage(&self, t: &Ty) -> Storage {
        if !matches!(t, Ty::Array(..)) {
            return Storage::Stack;
        }
        if let Some(n) = t.known_bytes() {
            return if n > TAPE_STACK_BYTES {
                Storage::Heap
            } else {
                Storage::Stack
            };
        }
        let mut dims = Vec::new();
        let mut cur = t;
        while let Ty::Array(e, n) = cur {
            n.paths(&mut dims);
            cur = e;
        }
        if dims.iter().any(|p| self.const_generics.contains(p)) {
            Storage::Stack
        } else if !t.is_named() {
            Storage::Heap
        } else {
            Storage::BySize
        }
    }

    /// The tape length for a loop with upper bound `hi`: const generic expressions cannot
    /// size arrays on stable Rust, so `N - k` is sized `N`.
    pub(super) fn tape_len(&self, hi: &CExpr) -> Result<CExpr, Diag> {
        let mut paths = Vec::new();
        hi.paths(&mut paths);
        if !paths.iter().any(|p| self.const_generics.contains(p)) {
            return Ok(hi.clone());
        }
        match hi {
            CExpr::Path(_) => Ok(hi.clone()),
            CExpr::Bin('-', a, b) if matches!(**a, CExpr::Path(_)) && b.lit().is_some() => Ok((**a).clone()),
            _ => Err(Diag::new(format!(
                "the loop bound `{hi}` uses a const generic: reverse mode cannot size its tape on stable Rust; loop to `{}` or `{} - k`",
                paths[0], paths[0]
            ))),
        }
    }
}
