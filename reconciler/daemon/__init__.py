"""The daemon layer, split by concern so that each part can be read (and tested) on its own.

``loop`` runs passes and wires the daemon's threads; ``schedule`` decides when a pass runs; ``peers`` talks
to and fences the other node; ``node`` holds what operators run on a node outside a pass; ``records`` is what
the daemon writes for others to read. Imports point down that list only: ``loop`` -> ``schedule``, ``peers``,
``node`` -> ``records`` (and ``node`` -> ``peers`` for the doctor's power-fence check).
"""
