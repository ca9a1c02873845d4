//! Which `InvokeContext` a natively running program's syscalls belong to.
//!
//! A builtin receives its `InvokeContext` as an argument, but the syscalls a
//! native program makes (`invoke_signed`, `Clock::get`...) go through
//! process-global stubs. A thread-local stack of frames connects the two;
//! nested native invocations (a program calling itself) push their own frame.

use std::cell::RefCell;

use solana_instruction::error::InstructionError;
use solana_program_runtime::invoke_context::InvokeContext;

struct FrameState {
    invoke_context: *mut InvokeContext<'static, 'static>,
    failed_cpi: Option<InstructionError>,
}

thread_local! {
    static FRAMES: RefCell<Vec<FrameState>> = const { RefCell::new(Vec::new()) };
}

/// The invocation currently running natively on this thread. Leaving it (or
/// unwinding through it) pops it again.
pub(crate) struct Frame {
    left: bool,
}

impl Frame {
    pub(crate) fn enter(invoke_context: &mut InvokeContext) -> Frame {
        // Lifetimes are erased: the frame never outlives the borrow (see `with_current`).
        let invoke_context: *mut InvokeContext<'static, 'static> =
            (invoke_context as *mut InvokeContext).cast();
        FRAMES.with(|frames| {
            frames.borrow_mut().push(FrameState {
                invoke_context,
                failed_cpi: None,
            })
        });
        Frame { left: false }
    }

    /// Pops the frame and returns the error of a CPI that failed inside it.
    pub(crate) fn leave(mut self) -> Option<InstructionError> {
        self.left = true;
        FRAMES.with(|frames| frames.borrow_mut().pop().and_then(|f| f.failed_cpi))
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if !self.left {
            FRAMES.with(|frames| frames.borrow_mut().pop());
        }
    }
}

/// Runs `f` with the innermost running invocation, or returns `None` when no
/// native program is running on this thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&mut InvokeContext) -> R) -> Option<R> {
    let pointer = FRAMES.with(|frames| frames.borrow().last().map(|f| f.invoke_context))?;
    // SAFETY: the pointer was taken from the `&mut InvokeContext` the builtin
    // was called with; its frame is popped before that borrow ends, and the
    // builtin does not touch the context while the program runs.
    let invoke_context = unsafe { &mut *pointer };
    Some(f(invoke_context))
}

/// Remembers that a CPI failed: the real runtime aborts the caller then, so
/// the invocation fails with this error whatever the program returns.
pub(crate) fn record_failed_cpi(err: InstructionError) {
    FRAMES.with(|frames| {
        if let Some(frame) = frames.borrow_mut().last_mut() {
            frame.failed_cpi.get_or_insert(err);
        }
    });
}
