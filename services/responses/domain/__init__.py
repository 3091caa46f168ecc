"""Pure rules of the responses service: no I/O, every function over plain values, unit-tested directly.

- ``definition``: what a valid survey is (questions, conditions, outcomes) and its parsed versions;
- ``languages``: which locale a respondent sees and the texts filled with hidden fields;
- ``logic``: which questions a respondent sees, page by page, and which thank-you page;
- ``answers``: what a valid answer is, from JSON or an HTML form, and what a response keeps;
- ``branding``: the colours, fonts and logo of the survey pages, contrast-checked;
- ``checklist``: the question checklist's warnings and the time a survey takes.
"""
