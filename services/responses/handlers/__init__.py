"""What happens when a survey is defined or edited, a survey link is opened or answered, a kiosk
starts a respondent, or a contact is erased: one module per use case, each function one step of a
unit of work on the caller's session.

- ``surveys``: survey definitions and their versions, closing and reopening;
- ``workspace_settings``: the workspace's branding and glossary, and the question checklist;
- ``visits``: reading a survey link and opening the visit behind it;
- ``responses``: a response's life: started by its first answer, answers saved, completed;
- ``erasure``: an erased contact's personal data removed everywhere, and their links closed;
- ``retention``: responses older than the workspace's retention policy anonymised;
- ``steps``: what the HTML survey page shows next and what its form posts store;
- ``kiosks``: public per-location links and their anonymous respondents;
- ``rewards``: reward code pools and the one code a completed response gets;
- ``errors``: the errors respondents and survey editors see.
"""
