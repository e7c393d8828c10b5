"""Writes of komu.notices, by sub-domain: notices between boards and schools, letters to guardians, attachments
and paper sends."""
