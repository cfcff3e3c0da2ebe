//! Storage for the configured plugin instance.
//!
//! A component instance runs one call at a time on one thread, so a
//! thread-local slot is enough; `Rc` lets a call use the state without holding
//! the slot borrowed (a re-entrant `configure` cannot then panic on a borrow).

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

/// One world's slot for the value returned by the plugin's `configure`.
pub(crate) struct InstanceSlot {
    value: RefCell<Option<Rc<dyn Any>>>,
}

impl InstanceSlot {
    /// An empty slot: the plugin is not configured.
    pub(crate) const fn new() -> Self {
        Self {
            value: RefCell::new(None),
        }
    }

    /// Stores the configured instance, replacing any earlier one.
    pub(crate) fn install<T: 'static>(&self, value: T) {
        *self.value.borrow_mut() = Some(Rc::new(value));
    }

    /// Forgets the configured instance (before a new `configure`).
    pub(crate) fn clear(&self) {
        *self.value.borrow_mut() = None;
    }

    /// The configured instance, if `configure` succeeded.
    pub(crate) fn get<T: 'static>(&self) -> Option<Rc<T>> {
        let value = self.value.borrow().clone()?;
        value.downcast::<T>().ok()
    }
}

/// Message for any call made before a successful `configure`.
pub(crate) fn not_configured_message(plugin: &str, call: &str) -> String {
    format!("plugin `{plugin}`: `{call}` called before a successful `configure`")
}
