"""The training runs' thread choice (`threads: 0`) counts the cores other work leaves free."""

from helpers.cpuhog import CpuHog

from redraw_training.runtime import auto_threads, free_cores, usable_cpus


def test_auto_threads_takes_one_thread_when_every_core_is_busy():
    cores = len(usable_cpus())
    with CpuHog(cores=cores):
        threads, free = auto_threads(sample_s=1.0)
    assert threads == 1 and free < 0.75, (threads, free, cores)


def test_free_cores_is_a_share_of_the_usable_cores():
    free = free_cores(sample_s=0.2)
    assert 0.0 <= free <= len(usable_cpus()) + 1e-9
