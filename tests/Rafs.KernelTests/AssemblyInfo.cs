// Kernel tests mount, drop caches and hold fanotify groups; run them one class at a time so one test's
// global actions (drop_caches, sync) never stall another's handler-dependent reads.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
