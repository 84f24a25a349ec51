use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::BoxError;

/// Polls `cond` until it holds, failing the test after five seconds of real time.
async fn eventually(what: &str, cond: impl FnMut() -> bool) {
    crate::testing::eventually(Duration::from_secs(5), what, cond).await;
}

/// Gives restarts that should not happen a chance to happen: every test here that is not
/// multi-threaded runs on tokio's paused clock, where this sleep returns once every task has
/// run as far as it can, without waiting.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A child that counts its starts and runs until cancelled.
fn waiting(id: &str, starts: &Arc<AtomicUsize>) -> ChildSpec {
    let starts = Arc::clone(starts);
    ChildSpec::new(id, move |token: CancellationToken| {
        starts.fetch_add(1, SeqCst);
        async move {
            token.cancelled().await;
            Ok::<_, BoxError>(())
        }
    })
}

#[derive(Clone, Copy)]
enum Failure {
    Error,
    Panic,
}

/// A child that counts its starts, fails on the first one and runs until cancelled after.
fn failing_once(id: &str, starts: &Arc<AtomicUsize>, failure: Failure) -> ChildSpec {
    let starts = Arc::clone(starts);
    ChildSpec::new(id, move |token: CancellationToken| {
        let n = starts.fetch_add(1, SeqCst) + 1;
        async move {
            if n == 1 {
                match failure {
                    Failure::Error => return Err::<(), BoxError>("boom".into()),
                    Failure::Panic => panic!("boom"),
                }
            }
            token.cancelled().await;
            Ok(())
        }
    })
}

#[test]
fn supervisor_is_send_sync_static() {
    fn assert_send_sync_static<T: Send + Sync + 'static>() {}
    assert_send_sync_static::<Supervisor>();
    assert_send_sync_static::<SupervisorBuilder>();
    assert_send_sync_static::<ChildSpec>();
    assert_send_sync_static::<Error>();
}

#[test]
fn exit_reason_classifies_and_displays() {
    assert!(!ExitReason::Normal.is_abnormal());
    assert!(!ExitReason::Shutdown.is_abnormal());
    assert!(ExitReason::Error("x".into()).is_abnormal());
    assert!(ExitReason::Panic("x".into()).is_abnormal());
    assert_eq!(ExitReason::Shutdown.to_string(), "shutdown");
    assert_eq!(ExitReason::Panic("boom".into()).to_string(), "panic: boom");
    let payload: Box<dyn std::any::Any + Send> = Box::new(format!("at {}", 3));
    assert_eq!(ExitReason::from_panic(&*payload), ExitReason::Panic("at 3".into()));
    let payload: Box<dyn std::any::Any + Send> = Box::new(7_u8);
    assert!(matches!(ExitReason::from_panic(&*payload), ExitReason::Panic(_)));
}

#[test]
#[should_panic(expected = "already has a child `a`")]
fn builder_rejects_duplicate_ids() {
    let a = counter();
    let _ = Supervisor::builder().child(waiting("a", &a)).child(waiting("a", &a));
}

#[test]
#[should_panic(expected = "within a tokio runtime")]
fn start_outside_a_runtime_panics() {
    let _ = Supervisor::builder().start();
}

#[tokio::test(start_paused = true)]
async fn panic_in_permanent_child_is_caught_counted_and_restarted_alone() {
    let (a, b, c) = (counter(), counter(), counter());
    let sup = Supervisor::builder()
        .name("one_for_one")
        .child(waiting("a", &a))
        .child(failing_once("b", &b, Failure::Panic))
        .child(waiting("c", &c))
        .start();

    eventually("b restarted", || b.load(SeqCst) == 2).await;
    eventually("all running", || sup.stats().static_children == 3).await;
    settle().await;
    assert_eq!((a.load(SeqCst), b.load(SeqCst), c.load(SeqCst)), (1, 2, 1));
    let stats = sup.stats();
    assert_eq!((stats.panics, stats.abnormal_exits, stats.restarts), (1, 1, 1));
    assert!(sup.is_running());
    // The tree names the child that failed, how, and how often it was restarted.
    let tree = sup.tree();
    assert_eq!(
        (tree.name.as_str(), tree.strategy, tree.running),
        ("one_for_one", Strategy::OneForOne, true)
    );
    let children: Vec<_> = tree
        .children
        .iter()
        .map(|c| (c.id.as_str(), c.running, c.restarts, c.last_exit.as_deref()))
        .collect();
    assert_eq!(
        children,
        [("a", true, 0, None), ("b", true, 1, Some("panic: boom")), ("c", true, 0, None)]
    );

    sup.shutdown().await.unwrap();
    assert_eq!(sup.stats().static_children, 0);
    assert!(!sup.is_running());
}

#[tokio::test(start_paused = true)]
async fn transient_child_is_restarted_after_an_error_but_not_after_ok() {
    let starts = counter();
    let spec = {
        let starts = Arc::clone(&starts);
        ChildSpec::new("job", move |_token| {
            let n = starts.fetch_add(1, SeqCst) + 1;
            async move {
                if n == 1 {
                    Err::<(), BoxError>("first run fails".into())
                } else {
                    Ok(())
                }
            }
        })
        .restart(Restart::Transient)
    };
    let sup = Supervisor::builder().child(spec).start();

    eventually("job done for good", || {
        starts.load(SeqCst) == 2 && sup.stats().static_children == 0
    })
    .await;
    settle().await;
    assert_eq!(starts.load(SeqCst), 2);
    let stats = sup.stats();
    assert_eq!((stats.restarts, stats.abnormal_exits, stats.panics), (1, 1, 0));
    // Removed once done, so its id is free again.
    sup.start_child(waiting("job", &counter())).await.unwrap();
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn temporary_static_child_is_never_restarted() {
    let starts = counter();
    let sup = Supervisor::builder()
        .child(failing_once("once", &starts, Failure::Panic).restart(Restart::Temporary))
        .start();

    eventually("panic counted", || sup.stats().panics == 1).await;
    settle().await;
    assert_eq!(starts.load(SeqCst), 1);
    let stats = sup.stats();
    assert_eq!((stats.restarts, stats.static_children), (0, 0));
    assert!(sup.is_running());
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_later_children_only() {
    let (a, b, c) = (counter(), counter(), counter());
    let sup = Supervisor::builder()
        .strategy(Strategy::RestForOne)
        .child(waiting("a", &a))
        .child(failing_once("b", &b, Failure::Error))
        .child(waiting("c", &c))
        .start();

    eventually("c restarted", || c.load(SeqCst) == 2).await;
    eventually("all running", || sup.stats().static_children == 3).await;
    settle().await;
    assert_eq!((a.load(SeqCst), b.load(SeqCst), c.load(SeqCst)), (1, 2, 2));
    assert_eq!(sup.stats().restarts, 1);
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_every_child() {
    let (a, b, c) = (counter(), counter(), counter());
    let sup = Supervisor::builder()
        .strategy(Strategy::OneForAll)
        .child(waiting("a", &a))
        .child(failing_once("b", &b, Failure::Panic))
        .child(waiting("c", &c))
        .start();

    eventually("everyone restarted", || {
        a.load(SeqCst) == 2 && b.load(SeqCst) == 2 && c.load(SeqCst) == 2
    })
    .await;
    eventually("all running", || sup.stats().static_children == 3).await;
    settle().await;
    assert_eq!((a.load(SeqCst), b.load(SeqCst), c.load(SeqCst)), (2, 2, 2));
    let stats = sup.stats();
    assert_eq!((stats.restarts, stats.panics), (1, 1));
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn exceeding_the_intensity_stops_all_children_and_fails_wait() {
    let steady_stopped = Arc::new(AtomicBool::new(false));
    let steady = {
        let stopped = Arc::clone(&steady_stopped);
        ChildSpec::new("steady", move |token: CancellationToken| {
            let stopped = Arc::clone(&stopped);
            async move {
                token.cancelled().await;
                stopped.store(true, SeqCst);
                Ok::<_, BoxError>(())
            }
        })
    };
    let crashes = counter();
    let crashing = {
        let crashes = Arc::clone(&crashes);
        ChildSpec::new("crashing", move |_token| {
            crashes.fetch_add(1, SeqCst);
            async { Err::<(), BoxError>("always".into()) }
        })
    };
    let sup = Supervisor::builder()
        .name("fragile")
        .intensity(2, Duration::from_secs(60))
        .child(steady)
        .child(crashing)
        .start();

    let err = tokio::time::timeout(Duration::from_secs(5), sup.wait())
        .await
        .expect("supervisor gave up")
        .unwrap_err();
    assert!(err.is_intensity_exceeded(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "supervisor `fragile` exceeded its restart intensity (more than 2 restarts within 60s)"
    );
    assert!(steady_stopped.load(SeqCst));
    assert_eq!(crashes.load(SeqCst), 3);
    let stats = sup.stats();
    assert_eq!((stats.restarts, stats.abnormal_exits, stats.static_children), (2, 3, 0));
    assert!(!sup.is_running());
    assert!(sup.spawn_temporary("late", |_| async {}).unwrap_err().is_stopped());
    assert!(sup.start_child(waiting("late", &counter())).await.unwrap_err().is_stopped());
    // Shutdown after the fact reports how the supervisor ended.
    assert!(sup.shutdown().await.unwrap_err().is_intensity_exceeded());
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_window_do_not_add_up() {
    let crashes = counter();
    let crashing = {
        let crashes = Arc::clone(&crashes);
        ChildSpec::new("slow_crash", move |_token| {
            crashes.fetch_add(1, SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Err::<(), BoxError>("again".into())
            }
        })
    };
    let sup = Supervisor::builder().intensity(1, Duration::from_secs(5)).child(crashing).start();
    // One restart per 3 s never puts two inside a 5 s window... until it does: 3 s and 6 s are
    // 3 s apart, so the second restart exceeds an intensity of 1.
    let err = sup.wait().await.unwrap_err();
    assert!(err.is_intensity_exceeded());
    assert_eq!(crashes.load(SeqCst), 2);

    let crashes = counter();
    let crashing = {
        let crashes = Arc::clone(&crashes);
        ChildSpec::new("slower_crash", move |_token| {
            crashes.fetch_add(1, SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(6)).await;
                Err::<(), BoxError>("again".into())
            }
        })
    };
    let sup = Supervisor::builder().intensity(1, Duration::from_secs(5)).child(crashing).start();
    tokio::time::sleep(Duration::from_secs(57)).await;
    assert!(sup.is_running());
    assert_eq!(sup.stats().restarts, 9);
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn nested_supervisor_failing_counts_as_a_restart_in_its_parent() {
    let inner_starts = counter();
    let inner_stopped = Arc::new(AtomicBool::new(false));
    let inner_child = {
        let starts = Arc::clone(&inner_starts);
        let stopped = Arc::clone(&inner_stopped);
        ChildSpec::new("inner_child", move |token: CancellationToken| {
            let n = starts.fetch_add(1, SeqCst) + 1;
            let stopped = Arc::clone(&stopped);
            async move {
                if n == 1 {
                    return Err::<(), BoxError>("inner failure".into());
                }
                token.cancelled().await;
                stopped.store(true, SeqCst);
                Ok(())
            }
        })
    };
    // An intensity of zero makes the inner supervisor give up on its child's first failure.
    let inner = Supervisor::builder()
        .name("inner")
        .intensity(0, Duration::from_secs(60))
        .child(inner_child);
    let sibling = counter();
    let parent = Supervisor::builder()
        .name("parent")
        .child(waiting("sibling", &sibling))
        .child(inner.into_child_spec("inner"))
        .start();

    eventually("inner child running again", || inner_starts.load(SeqCst) == 2).await;
    eventually("parent restarted inner", || parent.stats().restarts == 1).await;
    settle().await;
    let stats = parent.stats();
    assert_eq!((stats.restarts, stats.abnormal_exits, stats.static_children), (1, 1, 2));
    assert_eq!(sibling.load(SeqCst), 1);
    assert_eq!(inner_starts.load(SeqCst), 2);
    // The parent's tree holds the nested supervisor's, the one its restart runs now.
    let tree = parent.tree();
    let inner = &tree.children[1];
    assert_eq!((inner.id.as_str(), inner.restarts), ("inner", 1));
    assert!(inner.last_exit.as_deref().is_some_and(|e| e.contains("intensity")), "{inner:?}");
    let nested = inner.supervisor.as_ref().expect("the nested tree");
    assert_eq!((nested.name.as_str(), nested.children.len()), ("inner", 1));
    assert_eq!((nested.children[0].id.as_str(), nested.children[0].restarts), ("inner_child", 0));

    parent.shutdown().await.unwrap();
    assert!(inner_stopped.load(SeqCst), "the nested supervisor shut its child down");
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_static_children_in_reverse_order_and_aborts_stragglers() {
    let order = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let polite = |id: &'static str| {
        let order = Arc::clone(&order);
        ChildSpec::new(id, move |token: CancellationToken| {
            let order = Arc::clone(&order);
            async move {
                token.cancelled().await;
                order.lock().unwrap().push(id);
                Ok::<_, BoxError>(())
            }
        })
    };
    struct OnDrop(Arc<Mutex<Vec<&'static str>>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.lock().unwrap().push("stubborn aborted");
        }
    }
    let stubborn = {
        let order = Arc::clone(&order);
        ChildSpec::new("stubborn", move |_token| {
            let guard = OnDrop(Arc::clone(&order));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok::<_, BoxError>(())
            }
        })
        .shutdown_timeout(Duration::from_secs(2))
    };
    let sup =
        Supervisor::builder().child(polite("first")).child(stubborn).child(polite("last")).start();
    eventually("all running", || sup.stats().static_children == 3).await;

    let began = tokio::time::Instant::now();
    let (a, b) = tokio::join!(sup.shutdown(), sup.shutdown());
    a.unwrap();
    b.unwrap();
    assert_eq!(*order.lock().unwrap(), ["last", "stubborn aborted", "first"]);
    assert!(began.elapsed() >= Duration::from_secs(2));
    let stats = sup.stats();
    assert_eq!((stats.static_children, stats.restarts, stats.abnormal_exits), (0, 0, 0));
    sup.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_and_awaits_a_thousand_temporary_children() {
    let sup = Supervisor::builder().name("endpoint").start();
    let finished = counter();
    for _ in 0..1_000 {
        let finished = Arc::clone(&finished);
        sup.spawn_temporary("conn", move |token| async move {
            token.cancelled().await;
            tokio::task::yield_now().await;
            finished.fetch_add(1, SeqCst);
        })
        .unwrap();
    }
    assert_eq!(sup.stats().temporary_children, 1_000);

    sup.shutdown().await.unwrap();
    assert_eq!(finished.load(SeqCst), 1_000);
    assert_eq!(sup.stats().temporary_children, 0);
    assert_eq!(sup.shared.temporaries.slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn temporary_children_are_stopped_before_static_ones() {
    let order = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let static_child = {
        let order = Arc::clone(&order);
        ChildSpec::new("static", move |token: CancellationToken| {
            let order = Arc::clone(&order);
            async move {
                token.cancelled().await;
                order.lock().unwrap().push("static");
                Ok::<_, BoxError>(())
            }
        })
    };
    let sup = Supervisor::builder().child(static_child).start();
    let temp_order = Arc::clone(&order);
    sup.spawn_temporary("conn", move |token| async move {
        token.cancelled().await;
        // Slow to stop: the static child must still wait for it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        temp_order.lock().unwrap().push("temporary");
    })
    .unwrap();
    eventually("static running", || sup.stats().static_children == 1).await;
    sup.shutdown().await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["temporary", "static"]);
}

#[tokio::test(start_paused = true)]
async fn temporary_children_ignoring_shutdown_are_aborted_after_the_dynamic_timeout() {
    let sup = Supervisor::builder().dynamic_shutdown_timeout(Duration::from_secs(3)).start();
    let dropped = counter();
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    for _ in 0..10 {
        let guard = OnDrop(Arc::clone(&dropped));
        sup.spawn_temporary("stuck", move |_token| async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })
        .unwrap();
    }
    let began = tokio::time::Instant::now();
    sup.shutdown().await.unwrap();
    assert!(began.elapsed() >= Duration::from_secs(3));
    assert_eq!(dropped.load(SeqCst), 10);
    assert_eq!(sup.stats().temporary_children, 0);
}

#[tokio::test(start_paused = true)]
async fn panicking_temporary_child_is_counted_and_the_supervisor_keeps_running() {
    let sup = Supervisor::builder().start();
    sup.spawn_temporary("conn", |_token| async { panic!("handler bug") }).unwrap();
    // A panic while building the future is caught too, and never reaches the caller.
    sup.spawn_temporary("conn", |_token| -> std::future::Ready<()> { panic!("setup bug") })
        .unwrap();
    eventually("panics counted", || sup.stats().panics == 2).await;
    eventually("panicked children gone", || sup.stats().temporary_children == 0).await;
    assert_eq!(sup.stats().abnormal_exits, 2);
    assert!(sup.is_running());

    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    sup.spawn_temporary("conn", move |_token| async move { flag.store(true, SeqCst) }).unwrap();
    eventually("next child ran", || ran.load(SeqCst)).await;
    eventually("slots freed", || sup.shared.temporaries.slots() == 0).await;
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn spawn_temporary_after_shutdown_is_refused() {
    let sup = Supervisor::builder().name("closed").start();
    sup.shutdown().await.unwrap();
    let called = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&called);
    let err = sup
        .spawn_temporary("conn", move |_token| {
            flag.store(true, SeqCst);
            async {}
        })
        .unwrap_err();
    assert!(err.is_stopped());
    assert_eq!(err.to_string(), "supervisor `closed` is not running");
    assert!(!called.load(SeqCst), "the closure is not called once stopped");
}

#[tokio::test(start_paused = true)]
async fn temporary_child_ids_are_distinct() {
    let sup = Supervisor::builder().start();
    let a = sup.spawn_temporary("conn", |_| async {}).unwrap();
    let b = sup.spawn_temporary("conn", |_| async {}).unwrap();
    assert_ne!(a, b);
    assert_eq!(b.as_u64(), a.as_u64() + 1);
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn start_and_terminate_children_dynamically() {
    let sup = Supervisor::builder().start();
    let (a, b) = (counter(), counter());
    sup.start_child(waiting("a", &a)).await.unwrap();
    sup.start_child(waiting("b", &b)).await.unwrap();
    assert!(sup.start_child(waiting("a", &a)).await.unwrap_err().is_duplicate());
    assert_eq!(sup.stats().static_children, 2);

    sup.terminate_child("a").await.unwrap();
    assert_eq!(sup.stats().static_children, 1);
    let err = sup.terminate_child("a").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "no child `a` is supervised");
    settle().await;
    assert_eq!((a.load(SeqCst), b.load(SeqCst)), (1, 1), "a terminated child is not restarted");
    assert_eq!(sup.stats().restarts, 0);

    sup.shutdown().await.unwrap();
    assert!(sup.terminate_child("b").await.unwrap_err().is_stopped());
}

#[tokio::test(start_paused = true)]
async fn a_child_panicking_while_its_future_is_built_is_restarted() {
    let starts = counter();
    let spec = {
        let starts = Arc::clone(&starts);
        ChildSpec::new("fragile_start", move |token: CancellationToken| {
            assert!(starts.fetch_add(1, SeqCst) > 0, "first start blows up");
            async move {
                token.cancelled().await;
                Ok::<_, BoxError>(())
            }
        })
    };
    let sup = Supervisor::builder().child(spec).start();
    eventually("restarted", || starts.load(SeqCst) == 2).await;
    eventually("running", || sup.stats().static_children == 1).await;
    assert_eq!(sup.stats().panics, 1);
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn debug_output_names_the_supervisor() {
    let sup = Supervisor::builder().name("dbg").start();
    let shown = format!("{sup:?}");
    assert!(shown.contains("\"dbg\""), "{shown}");
    sup.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn children_failing_during_shutdown_are_not_restarted() {
    let starts = counter();
    let grumpy = {
        let starts = Arc::clone(&starts);
        ChildSpec::new("grumpy", move |token: CancellationToken| {
            starts.fetch_add(1, SeqCst);
            async move {
                token.cancelled().await;
                Err::<(), BoxError>("did not want to stop".into())
            }
        })
    };
    let sup = Supervisor::builder().child(grumpy).child(waiting("other", &counter())).start();
    eventually("running", || sup.stats().static_children == 2).await;
    sup.shutdown().await.unwrap();
    settle().await;
    assert_eq!(starts.load(SeqCst), 1);
    let stats = sup.stats();
    assert_eq!((stats.restarts, stats.abnormal_exits, stats.static_children), (0, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn one_for_all_does_not_restart_temporary_siblings() {
    let (a, b) = (counter(), counter());
    let sup = Supervisor::builder()
        .strategy(Strategy::OneForAll)
        .child(waiting("a", &a).restart(Restart::Temporary))
        .child(failing_once("b", &b, Failure::Error))
        .start();
    eventually("b restarted", || b.load(SeqCst) == 2).await;
    eventually("only b running", || sup.stats().static_children == 1).await;
    settle().await;
    assert_eq!((a.load(SeqCst), b.load(SeqCst)), (1, 2));
    sup.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawning_while_shutting_down_never_leaks_a_child() {
    let sup = Supervisor::builder().start();
    let finished = counter();
    let spawner = {
        let (sup, finished) = (sup.clone(), Arc::clone(&finished));
        tokio::spawn(async move {
            let mut admitted = 0_usize;
            loop {
                for _ in 0..64 {
                    let finished = Arc::clone(&finished);
                    let spawned = sup.spawn_temporary("conn", move |token| async move {
                        token.cancelled().await;
                        finished.fetch_add(1, SeqCst);
                    });
                    match spawned {
                        Ok(_) => admitted += 1,
                        Err(e) => {
                            assert!(e.is_stopped());
                            return admitted;
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    sup.shutdown().await.unwrap();
    let admitted = spawner.await.unwrap();
    assert!(admitted > 0);
    assert_eq!(finished.load(SeqCst), admitted, "every admitted child ran to its end");
    assert_eq!(sup.stats().temporary_children, 0);
    assert_eq!(sup.shared.temporaries.slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_tree_counts_temporary_children_by_name_as_they_come_and_go() {
    let sup = Supervisor::builder().name("endpoint").start();
    let (release, released) = tokio::sync::watch::channel(false);
    let wait = |mut released: tokio::sync::watch::Receiver<bool>| async move {
        let _ = released.wait_for(|done| *done).await;
    };
    for _ in 0..3 {
        sup.spawn_temporary("connection", |_| wait(released.clone())).unwrap();
    }
    sup.spawn_temporary("channel", |_| wait(released.clone())).unwrap();
    // One that panics is gone from the count too.
    sup.spawn_temporary("channel", |_| async { panic!("boom") }).unwrap();
    settle().await;
    let temporaries = sup.tree().temporaries;
    assert_eq!(temporaries, [("connection".to_owned(), 3), ("channel".to_owned(), 1)]);

    release.send(true).unwrap();
    eventually("every child gone", || sup.stats().temporary_children == 0).await;
    let temporaries = sup.tree().temporaries;
    assert_eq!(temporaries, [("connection".to_owned(), 0), ("channel".to_owned(), 0)]);
    sup.shutdown().await.unwrap();
}
