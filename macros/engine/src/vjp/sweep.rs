//! The two sweeps: the forward sweep (the primal with tape writes) and the reverse sweep
//! (adjoint statements in reverse order, loops run backwards).

use super::*;

impl Rx<'_> {
    /// The reverse of a block. `defs`: variables defined at its top (parameters for the
    /// root); `seed`: the result and its cotangent (root only).
    pub(super) fn rblock(
        &mut self,
        blk: &Block,
        defs: &[VarId],
        seed: Option<(&Operand, Operand)>,
    ) -> Result<Vec<Stmt>, Diag> {
        let bid = self.bid(blk);
        let mut header = Builder::new(self.g);
        let mut defined: Vec<VarId> = defs.to_vec();
        for s in &blk.0 {
            if let Stmt::Let(v, _) | Stmt::Mut(v, _) = s {
                defined.push(*v);
            }
        }
        for v in defined {
            if !self.act.contains(&v) {
                continue;
            }
            let info = header.f.vars[v].clone();
            let adj = match &info.ty {
                Ty::Tuple(ts) if !info.mutable && !self.nested_use.contains(&v) => {
                    Adj::Fields(vec![Vec::new(); ts.len()])
                }
                Ty::Float(_) if !info.mutable && !self.nested_use.contains(&v) => Adj::Sym(Vec::new()),
                // A value only rustc types that is read only by its fields (a call's tuple
                // result): per-field sums, as a tuple's.
                Ty::Unknown if !info.mutable && !self.nested_use.contains(&v) && field_arity(blk, v).is_some() => {
                    Adj::Fields(vec![Vec::new(); field_arity(blk, v).unwrap_or(0)])
                }
                ty => {
                    let tty = ty.tangent();
                    let init = match &tty {
                        Ty::Float(_) => Expr::Use(Operand::float(0.0)),
                        // A growing tape's adjoint (reverse over a reverse pass through a
                        // loop with a run-time trip count): zeros of the tape's length,
                        // which the forward sweep has filled; its slots are read and reset
                        // in any order, not pushed.
                        _ if info.storage == Storage::Growing => Expr::ZeroLike(Operand::Var(v)),
                        // A tape's adjoint is a tape too, stored alike.
                        t if info.storage != Storage::Stack => Expr::Zeros(t.clone()),
                        t if t.is_known() => Expr::Zeros(t.clone()),
                        _ if bid != 0 && info.mutable => {
                            // A mutable variable of a type only rustc knows, declared in a
                            // loop or branch: its current value is not visible here, but its
                            // initialiser has its shape.
                            let init = blk.0.iter().find_map(|s| match s {
                                Stmt::Mut(w, Some(e)) if *w == v => Some(e.clone()),
                                _ => None,
                            });
                            match init {
                                Some(Expr::Use(o)) | Some(Expr::ZeroLike(o)) => Expr::ZeroLike(o),
                                Some(Expr::Zeros(t)) => Expr::Zeros(t.tangent()),
                                // Declared without a value (`if` values): a zero whose type
                                // rustc infers from the accumulations into it.
                                _ => Expr::Zeros(Ty::Unknown),
                            }
                        }
                        _ => Expr::ZeroLike(Operand::Var(v)),
                    };
                    let a = header.let_mut(Some(init), &format!("{}_bar", info.name), tty);
                    header.f.vars[a].storage = match info.storage {
                        Storage::Growing => Storage::Stack,
                        s => s,
                    };
                    Adj::Acc(a)
                }
            };
            self.adj.insert(v, adj);
        }
        let mut head = header.take();
        let mut b = Builder::new(self.g);
        if let Some((ret, ct)) = seed {
            contribute(&self.act, &mut self.adj, &mut b, ret, ct);
        }
        let mut out = b.take();
        for s in blk.0.iter().rev() {
            self.rstmt(s, &mut out)?;
        }
        head.append(&mut out);
        Ok(head)
    }

    pub(super) fn rstmt(&mut self, s: &Stmt, out: &mut Vec<Stmt>) -> Result<(), Diag> {
        match s {
            Stmt::Let(r, Expr::Call(c)) if c.modes == [Mode::VjpFwd] => {
                // `(y, res) = g::vjp_fwd(x)`: `x̄ += g::vjp_bwd(x, res, ȳ)`, ȳ the adjoint of `y`
                // (or `g::vjp_bwd_acc(x, res, ȳ, &mut x̄)`).
                let in_place = accumulates_in_place(&self.act, &self.adj, self.g, c);
                let mut b = Builder::new(self.g);
                let ybar = match self.adj.get_mut(r) {
                    Some(Adj::Fields(fs)) if !fs.is_empty() => {
                        let l = std::mem::take(&mut fs[0]);
                        b.sum_terms(l)
                    }
                    Some(Adj::Acc(a)) => {
                        let a = *a;
                        let ty = b.f.vars[a].ty.clone();
                        let snap = b.let_ty(Expr::Use(Operand::Var(a)), "c", ty);
                        Some(b.let_(Expr::Field(snap, 0), "t"))
                    }
                    _ => None,
                };
                let (Some(ybar), Some(res)) = (ybar, self.residual_of.get(r).copied()) else {
                    out.extend(b.take());
                    return Ok(());
                };
                let n = c.args.len();
                let mut args = c.args.clone();
                args.push(Arg {
                    op: Operand::Var(res),
                    by_ref: false,
                    by_mut: false,
                });
                args.push(Arg {
                    op: ybar,
                    by_ref: false,
                    by_mut: false,
                });
                if in_place {
                    bwd_acc(&self.act, &mut self.adj, &mut b, c, args);
                    out.extend(b.take());
                    return Ok(());
                }
                let call = Call {
                    modes: vec![Mode::VjpBwd],
                    args,
                    ..c.clone()
                };
                let bars = b.let_ty(
                    Expr::Call(call),
                    &format!("{}_bars", c.name),
                    Ty::Tuple(vec![Ty::Unknown; n]),
                );
                for (k, a) in c.args.iter().enumerate() {
                    if a.op.var().is_some_and(|w| self.act.contains(&w)) {
                        // A slice's cotangent is a `Vec`: typed, so its adjoint is too.
                        let ty = match b.f.ty_of(&a.op).tangent() {
                            t @ Ty::Slice(_) => t,
                            _ => Ty::Unknown,
                        };
                        let bk = b.let_ty(Expr::Field(bars.clone(), k), "t", ty);
                        contribute(&self.act, &mut self.adj, &mut b, &a.op, bk);
                    }
                }
                out.extend(b.take());
            }
            Stmt::Let(v, e) => {
                if !self.act.contains(v) {
                    return Ok(());
                }
                let mut b = Builder::new(self.g);
                let Some(tb) = take(&mut self.adj, &mut b, *v) else {
                    out.extend(b.take());
                    return Ok(());
                };
                rexpr(&self.act, &mut self.adj, self.rules, &mut b, e, &Operand::Var(*v), tb)?;
                out.extend(b.take());
            }
            Stmt::Mut(v, init) => {
                if !self.act.contains(v) {
                    return Ok(());
                }
                if let Some(Expr::Use(o)) = init {
                    let Some(Adj::Acc(a)) = self.adj.get(v) else {
                        return Ok(());
                    };
                    let a = *a;
                    let mut b = Builder::new(self.g);
                    let ty = b.f.vars[a].ty.clone();
                    let snap = b.let_ty(Expr::Use(Operand::Var(a)), "c", ty);
                    contribute(&self.act, &mut self.adj, &mut b, o, snap);
                    out.extend(b.take());
                }
            }
            Stmt::Assign(p, op, value) => {
                let Some(Adj::Acc(a)) = self.adj.get(&p.var) else {
                    return Ok(());
                };
                let a = *a;
                let mut b = Builder::new(self.g);
                let val_active = value.var().is_some_and(|w| self.act.contains(&w));
                if *op == AssignOp::Set || val_active {
                    let cur = if p.idx.is_empty() {
                        let ty = b.f.vars[a].ty.clone();
                        b.let_ty(Expr::Use(Operand::Var(a)), "c", ty)
                    } else {
                        b.let_(Expr::Index(a, p.idx.clone()), "c")
                    };
                    if *op == AssignOp::Set {
                        let ty = b.f.vars[p.var].ty.indexed(p.idx.len());
                        let z = zero_of_ty(&mut b, &ty.tangent(), value);
                        b.push(Stmt::Assign(
                            Place {
                                var: a,
                                idx: p.idx.clone(),
                            },
                            AssignOp::Set,
                            z,
                        ));
                    }
                    if val_active {
                        let c = if *op == AssignOp::Sub { b.neg(cur) } else { cur };
                        contribute(&self.act, &mut self.adj, &mut b, value, c);
                    }
                }
                out.extend(b.take());
            }
            Stmt::For(l) => {
                let body_rev = self.rblock(&l.body, &[], None)?;
                let new_i = self
                    .g
                    .new_var(self.g.vars[l.var].name.clone(), self.g.vars[l.var].ty.clone(), false);
                let body_rev = self.close_block(&l.body, body_rev, Some((l.var, new_i)))?;
                out.push(Stmt::For(Loop {
                    var: new_i,
                    lo: l.lo.clone(),
                    hi: l.hi.clone(),
                    rev: !l.rev,
                    body: Block(body_rev),
                    span: l.span,
                }));
            }
            Stmt::If(c, t, e) => {
                let rt = self.rblock(t, &[], None)?;
                let rt = self.close_block(t, rt, None)?;
                let re = self.rblock(e, &[], None)?;
                let re = self.close_block(e, re, None)?;
                out.push(Stmt::If(c.clone(), Block(rt), Block(re)));
            }
        }
        Ok(())
    }

    /// The forward sweep: the primal with tape writes after the values the reverse needs.
    pub(super) fn forward(&self, b: &Block) -> Block {
        let mut out = Vec::new();
        for s in &b.0 {
            match s {
                Stmt::Let(v, _) => {
                    out.push(s.clone());
                    if let Some(w) = self.tape_writes.get(v) {
                        out.extend(w.iter().cloned());
                    }
                }
                Stmt::For(l) => out.push(Stmt::For(Loop {
                    body: self.forward(&l.body),
                    ..l.clone()
                })),
                Stmt::If(c, t, e) => out.push(Stmt::If(c.clone(), self.forward(t), self.forward(e))),
                s => out.push(s.clone()),
            }
        }
        Block(out)
    }
}

/// The accumulator a split call's argument can pass to `g::vjp_bwd_acc` as it is: an
/// active argument's `let mut` accumulator on the stack.
fn direct_acc(act: &HashSet<VarId>, adj: &HashMap<VarId, Adj>, f: &Func, a: &Arg) -> Option<VarId> {
    let w = a.op.var().filter(|w| act.contains(w))?;
    match adj.get(&w) {
        Some(Adj::Acc(acc)) if f.vars[*acc].storage == Storage::Stack => Some(*acc),
        _ => None,
    }
}

/// Whether the reverse half of the split call `c` adds into the caller's accumulators
/// (`g::vjp_bwd_acc`) rather than returning cotangents (`g::vjp_bwd`): where an array,
/// slice or matrix argument has an accumulator. Calls of scalars keep the by-value form.
fn accumulates_in_place(act: &HashSet<VarId>, adj: &HashMap<VarId, Adj>, f: &Func, c: &Call) -> bool {
    c.args.iter().any(|a| {
        direct_acc(act, adj, f, a).is_some()
            && (matches!(f.ty_of(&a.op), Ty::Slice(_))
                || matches!(
                    f.ty_of(&a.op).layout(),
                    Layout::Array | Layout::NalgebraStatic | Layout::NalgebraDynamic
                ))
    })
}

/// `g::vjp_bwd_acc(x.., res, ȳ, &mut x̄..)`: each argument's accumulator is passed as it
/// is; an argument without one (a scalar summed symbolically, an inactive one, one
/// passed twice) gets a zero of its tangent type, whose value, if the argument is
/// active, is contributed after the call.
///
/// ```text
/// g::vjp_bwd_acc(r, w, res, ȳ, &mut r_bar, &mut w_bar);   let c = r_bar; ..
/// ```
fn bwd_acc(act: &HashSet<VarId>, adj: &mut HashMap<VarId, Adj>, b: &mut Builder, c: &Call, mut args: Vec<Arg>) {
    let mut passed: Vec<VarId> = Vec::new();
    let mut after = Vec::new();
    for a in &c.args {
        let slot = match direct_acc(act, adj, b.f, a).filter(|acc| !passed.contains(acc)) {
            Some(acc) => acc,
            None => {
                let ty = b.f.ty_of(&a.op).tangent();
                let init = if ty.is_known() {
                    Expr::Zeros(ty.clone())
                } else {
                    Expr::ZeroLike(a.op.clone())
                };
                let s = b.let_mut(Some(init), "bar", ty);
                if a.op.var().is_some_and(|w| act.contains(&w)) {
                    after.push((a.op.clone(), s));
                }
                s
            }
        };
        passed.push(slot);
        args.push(Arg {
            op: Operand::Var(slot),
            by_ref: false,
            by_mut: true,
        });
    }
    let call = Call {
        modes: vec![Mode::VjpBwdAcc],
        args,
        ..c.clone()
    };
    b.let_ty(Expr::Call(call), &format!("{}_acc", c.name), Ty::Unit);
    for (o, s) in after {
        let ty = b.f.vars[s].ty.clone();
        let snap = b.let_ty(Expr::Use(Operand::Var(s)), "c", ty);
        contribute(act, adj, b, &o, snap);
    }
}

/// The number of fields of `v` read in `blk` (one past the highest), if every read of `v`
/// there is a field read.
fn field_arity(blk: &Block, v: VarId) -> Option<usize> {
    let mut n = None;
    for s in &blk.0 {
        match s {
            Stmt::Let(_, Expr::Field(Operand::Var(w), k)) if *w == v => n = Some(n.unwrap_or(0).max(k + 1)),
            s => {
                let mut r = Vec::new();
                stmt_reads(s, &mut r);
                if r.contains(&v) {
                    return None;
                }
            }
        }
    }
    n
}
