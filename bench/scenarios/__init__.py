"""The benchmark's scenarios, one module each.

``bench/run.py`` runs ``worker``, ``slow``, ``dispatch``, ``drain`` and ``cli_startup`` (in that
order, or the one ``--only`` names) by calling the module's ``run(procs, tmp, url, sizes)``,
which returns the scenario's results (a JSON object), and ``profile`` with ``--profile``.
``rate_limited`` runs on its own (``bench/rate_limited.py``). Each module is imported only when
its scenario runs, so a scenario that does not need the code under test in-process
(``cli_startup``) also runs against a checkout whose package names differ.
"""
