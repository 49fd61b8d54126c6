"""new_text: the lead's own words, without quoted history or signature.

Bodies are written the way the named client produces them (line layout, attribution
wording, markup); where a line must end in a space it is spelled "\\x20". The comment on
each case says where its shape comes from.
"""

from __future__ import annotations

import textwrap
from email.message import EmailMessage

import pytest

from inboxwatch.core.message import parse_message
from inboxwatch.core.quotes import new_text, new_text_of


def body(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


def lines(s: str) -> list[str]:
    """Non-blank lines: HTML paragraph spacing is html_to_text's business, not ours."""
    return [line for line in s.splitlines() if line.strip()]


QUOTE = """\
> Hi Jane,
>
> Thanks for your enquiry about the roof repair. Would Tuesday suit for a
> site visit?
>
> Bob
"""

# --- plain text: top-posted replies ---------------------------------------------------


def test_gmail_plain_top_post() -> None:
    # Gmail web (en-US), text/plain part: blank line, attribution, blank line, "> " quote.
    text = (
        body("""
        Hi Bob,

        Tuesday at 2pm works. Can you send the quote before then?

        Thanks,
        Jane

        On Mon, Mar 3, 2025 at 10:00 AM Bob Smith <bob@acme-roofing.com> wrote:

        """)
        + QUOTE
    )
    assert new_text(text) == (
        "Hi Bob,\n\nTuesday at 2pm works. Can you send the quote before then?\n\nThanks,\nJane"
    )


def test_gmail_plain_uk_locale_and_crlf() -> None:
    # Gmail en-GB wording; CRLF as on the wire when a part is taken raw.
    text = (
        "Tuesday works.\r\n\r\nOn Mon, 3 Mar 2025 at 10:00, Bob Smith <bob@acme-roofing.com>"
        " wrote:\r\n\r\n> Would Tuesday suit?\r\n"
    )
    assert new_text(text) == "Tuesday works."


@pytest.mark.parametrize(
    "attribution",
    [
        # Gmail wraps long attributions near 78 columns: before "wrote:" ...
        "On Mon, Mar 3, 2025 at 10:00 AM Bob Smith from Acme Roofing <bob@acme-roofing.com>\n"
        "wrote:",
        # ... or inside the address (shape from mailgun/talon's test corpus).
        "On Mon, 3 Mar 2025 at 10:00, Bob Smith from Acme Roofing Services Ltd <\n"
        "bob.smith@acme-roofing-services.example> wrote:",
        "On Nov 30, 2024, at 12:47 PM, Acme Roofing Notifications <\n"
        "notifications-reply+7f1b094ceb90e18cca93@acme-roofing.example>\n"
        "wrote:",
    ],
)
def test_gmail_wrapped_attribution(attribution: str) -> None:
    text = f"Yes please, go ahead.\n\n{attribution}\n\n{QUOTE}"
    assert new_text(text) == "Yes please, go ahead."


def test_gmail_signature_dash_dash_space() -> None:
    # Gmail plain part with a signature: RFC 3676 "-- " delimiter above the attribution.
    text = (
        body("""
        Tuesday works.

        --\x20
        Jane Doe
        Facilities Manager, Northwind Traders
        +44 20 7946 0000

        On Mon, Mar 3, 2025 at 10:00 AM Bob Smith <bob@acme-roofing.com> wrote:

        """)
        + QUOTE
    )
    assert new_text(text) == "Tuesday works."


def test_bare_dash_dash_signature() -> None:
    # Editors that trim trailing spaces turn "-- " into "--".
    text = "Please call me on Thursday.\n\n--\nPriya Shah\n07700 900123\n"
    assert new_text(text) == "Please call me on Thursday."


def test_outlook_desktop_plain_from_sent_block() -> None:
    # Outlook for Windows (Microsoft 365) text/plain: signature without delimiter, then
    # the From/Sent/To/Subject block (From line with a trailing space), no ">" markers.
    text = body("""
        Hi Bob,

        Thanks, Tuesday works for us. Please bring the quote.

        Kind regards,
        Jane Doe
        Facilities Manager | Northwind Traders

        From: Bob Smith <bob@acme-roofing.com>\x20
        Sent: Monday, March 3, 2025 10:00 AM
        To: Jane Doe <jane.doe@northwind.example>
        Subject: RE: Roof repair enquiry

        Hi Jane,

        Would Tuesday suit for a site visit?
        """)
    assert new_text(text) == (
        "Hi Bob,\n\nThanks, Tuesday works for us. Please bring the quote.\n\n"
        "Kind regards,\nJane Doe\nFacilities Manager | Northwind Traders"
    )


def test_outlook_mobile_underscores_and_get_outlook() -> None:
    # Outlook for iOS / Outlook on the web: footer, 32 underscores, header block.
    text = body("""
        Sounds good, see you Tuesday.

        Get Outlook for iOS<https://aka.ms/o0ukef>
        ________________________________
        From: Bob Smith <bob@acme-roofing.com>
        Sent: Monday, March 3, 2025 10:00:00 AM
        To: Jane Doe <jane.doe@northwind.example>
        Subject: Roof repair enquiry

        Hi Jane, would Tuesday suit for a site visit?
        """)
    assert new_text(text) == "Sounds good, see you Tuesday."


def test_underscores_without_header_block_are_kept() -> None:
    # A ruler the sender typed is text, not an Outlook separator.
    text = "Total: 3 rooms\n______________\nSigned off by Jane"
    assert new_text(text) == text


def test_outlook_original_message() -> None:
    # Outlook 2003-2010 and many webmails: "-----Original Message-----" ruler.
    text = body("""
        Approved, go ahead.

        -----Original Message-----
        From: Bob Smith [mailto:bob@acme-roofing.com]
        Sent: 03 March 2025 10:00
        To: Jane Doe
        Subject: Quote 2025-031
        """)
    assert new_text(text) == "Approved, go ahead."


def test_outlook_german_block() -> None:
    # Outlook, German UI: Von/Gesendet/An/Betreff.
    text = body("""
        Hallo Herr Smith,

        Dienstag passt uns gut. Bitte schicken Sie uns vorab das Angebot.

        Mit freundlichen Grüßen
        Jana Müller

        Von: Bob Smith <bob@acme-roofing.com>
        Gesendet: Montag, 3. März 2025 10:00
        An: Jana Müller <jana.mueller@nordwind.example>
        Betreff: AW: Anfrage Dachreparatur

        Hallo Frau Müller,
        """)
    assert new_text(text) == (
        "Hallo Herr Smith,\n\nDienstag passt uns gut. Bitte schicken Sie uns vorab das "
        "Angebot.\n\nMit freundlichen Grüßen\nJana Müller"
    )


@pytest.mark.parametrize(
    "block",
    [
        # Outlook, French UI: a (no-break) space before each colon.
        "De\u00a0: Bob Smith <bob@acme-roofing.com>\nEnvoyé\u00a0: lundi 3 mars 2025 10:00\n"
        "À\u00a0: Jeanne Dupont <jeanne@nordvent.example>\nObjet\u00a0: RE: Devis toiture",
        # Spanish.
        "De: Bob Smith <bob@acme-roofing.com>\nEnviado: lunes, 3 de marzo de 2025 10:00\n"
        "Para: Juana Pérez <juana@viento.example>\nAsunto: RE: Presupuesto tejado",
        # Dutch.
        "Van: Bob Smith <bob@acme-roofing.com>\nVerzonden: maandag 3 maart 2025 10:00\n"
        "Aan: Jan de Vries <jan@noordwind.example>\nOnderwerp: RE: Offerte dak",
        # Italian.
        "Da: Bob Smith <bob@acme-roofing.com>\nInviato: lunedì 3 marzo 2025 10:00\n"
        "A: Giovanna Rossi <giovanna@vento.example>\nOggetto: R: Preventivo tetto",
        # Portuguese (Brazil).
        "De: Bob Smith <bob@acme-roofing.com>\nEnviado: segunda-feira, 3 de março de 2025 "
        "10:00\nPara: Joana Silva <joana@vento.example>\nAssunto: RE: Orçamento telhado",
        # Gmail's plain rendering of a bold Outlook block, with a wrapped From line.
        "  *From:* Bob Smith [mailto:\n  bob@acme-roofing.com]\n"
        "  *Sent:* Monday, March 3, 2025 10:00 AM\n  *To:* Jane Doe\n  *Subject:* Quote",
        # Outlook for Mac: Date instead of Sent.
        "From: Bob Smith <bob@acme-roofing.com>\nDate: Monday, 3 March 2025 at 10:00\n"
        "To: Jane Doe <jane.doe@northwind.example>\nSubject: Quote",
    ],
)
def test_outlook_header_blocks_by_language(block: str) -> None:
    assert new_text(f"OK.\n\n{block}\n\nOriginal text\n") == "OK."


def test_apple_mail_plain() -> None:
    # Apple Mail (macOS): the attribution is itself inside the "> " quote.
    text = body("""
        Tuesday works, thanks.

        Jane

        > On 3 Mar 2025, at 10:00, Bob Smith <bob@acme-roofing.com> wrote:
        >\x20
        > Hi Jane,
        >\x20
        > Would Tuesday suit for a site visit?
        """)
    assert new_text(text) == "Tuesday works, thanks.\n\nJane"


def test_iphone_footer() -> None:
    # iOS Mail: "Sent from my iPhone", then the quoted attribution.
    text = body("""
        Tuesday works, thanks

        Sent from my iPhone

        > On Mar 3, 2025, at 10:00 AM, Bob Smith <bob@acme-roofing.com> wrote:
        >\x20
        > Hi Jane,
        """)
    assert new_text(text) == "Tuesday works, thanks"


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Enviado desde mi iPhone",
        "Get Outlook for Android<https://aka.ms/AAb9ysg>",
        "Sent from Mail<https://go.microsoft.com/fwlink/?LinkId=550986> for Windows",
    ],
)
def test_mobile_footers(footer: str) -> None:
    # Default footers of iOS Mail (en/de/fr/es), Outlook mobile and Windows 10 Mail.
    assert new_text(f"See you at 10.\n\n{footer}\n") == "See you at 10."


def test_footer_like_sentence_is_kept() -> None:
    text = "Sent from my office in Leeds yesterday: the signed order form and the deposit."
    assert new_text(text) == text


def test_thunderbird_plain_top_post() -> None:
    # Thunderbird: "On <short date> <time>, <name> wrote:" with no address.
    text = body("""
        Tuesday suits us. Please use the side entrance.

        On 3/3/25 10:00, Bob Smith wrote:
        > Hi Jane,
        >
        > Would Tuesday suit for a site visit?
        >
        > --\x20
        > Bob Smith
        """)
    assert new_text(text) == "Tuesday suits us. Please use the side entrance."


@pytest.mark.parametrize(
    "attribution",
    [
        # Gmail, German UI.
        "Am Mo., 3. März 2025 um 10:00 Uhr schrieb Bob Smith <bob@acme-roofing.com>:",
        # Apple Mail / Thunderbird, German UI.
        "Am 03.03.2025 um 10:00 schrieb Bob Smith <bob@acme-roofing.com>:",
        "Am 03.03.25 um 10:00 schrieb Bob Smith:",
        # Gmail, French UI (narrow no-break space before the colon).
        "Le lun. 3 mars 2025 à 10:00, Bob Smith <bob@acme-roofing.com> a écrit\u202f:",
        # Gmail, Spanish UI.
        "El lun, 3 mar 2025 a las 10:00, Bob Smith (<bob@acme-roofing.com>) escribió:",
        # Gmail, Italian UI.
        "Il giorno lun 3 mar 2025 alle ore 10:00 Bob Smith <bob@acme-roofing.com> ha scritto:",
        # Gmail, Dutch UI; Apple Mail, Dutch UI.
        "Op ma 3 mrt 2025 om 10:00 schreef Bob Smith <bob@acme-roofing.com>:",
        "Op 3 mrt. 2025, om 10:00 heeft Bob Smith <bob@acme-roofing.com> het volgende geschreven:",
        # Gmail, Portuguese UI.
        "Em seg., 3 de mar. de 2025 às 10:00, Bob Smith <bob@acme-roofing.com> escreveu:",
        # Yahoo Mail plain part.
        "On Monday, March 3, 2025 at 10:00:00 AM GMT+1, Bob Smith <bob@acme-roofing.com> wrote:",
        # Gmail, Polish, Turkish, Chinese, Japanese UI (the last has no verb at all).
        "pon., 3 mar 2025 o 10:00 Bob Smith <bob@acme-roofing.com> napisał(a):",
        "Bob Smith <bob@acme-roofing.com>, 3 Mar 2025 Pzt, 10:00 tarihinde şunu yazdı:",
        "Bob Smith <bob@acme-roofing.com> 于2025年3月3日周一 10:00写道：",
        "2025年3月3日(月) 10:00 Bob Smith <bob@acme-roofing.com>:",
        # NetEase 163, Mail.ru, Yandex.
        '在 2025-03-03 10:00:00，"Bob Smith" <bob@acme-roofing.com> 写道：',
        "Понедельник, 3 марта 2025, 10:00 +03:00 от Bob Smith <bob@acme-roofing.com>:",
        '03.03.2025, 10:00, "Bob Smith" <bob@acme-roofing.com>:',
    ],
)
def test_attribution_lines_by_language(attribution: str) -> None:
    text = f"Passt, danke.\n\n{attribution}\n\n{QUOTE}"
    assert new_text(text) == "Passt, danke."


def test_forwarded_message_keeps_the_note() -> None:
    # Gmail forward: the forwarder's note is the new text.
    text = body("""
        Hi Bob, forwarding my landlord's approval below. Can we go ahead?

        ---------- Forwarded message ---------
        From: Mark Landlord <mark@lettings.example>
        Date: Mon, 3 Mar 2025 at 09:12
        Subject: Roof repair approved
        To: Jane Doe <jane.doe@northwind.example>


        Approved, go ahead.
        """)
    assert new_text(text) == "Hi Bob, forwarding my landlord's approval below. Can we go ahead?"


def test_apple_forward_intro() -> None:
    # Apple Mail forward.
    text = "FYI\n\nBegin forwarded message:\n\nFrom: Mark <mark@lettings.example>\n"
    assert new_text(text) == "FYI"


# --- plain text: bottom-posted and interleaved ------------------------------------------


def test_bottom_posted_reply() -> None:
    # Gmail/mutt user replying below the quote, with a "-- " signature.
    text = body("""
        On Mon, Mar 3, 2025 at 10:00 AM Bob Smith <bob@acme-roofing.com> wrote:

        > Would Tuesday suit for a site visit?
        >

        Yes, Tuesday at 2pm is fine.

        Jane

        --\x20
        Jane Doe, Northwind Traders
        """)
    assert new_text(text) == "Yes, Tuesday at 2pm is fine.\n\nJane"


def test_thunderbird_bottom_post() -> None:
    # Thunderbird's default: reply starts below the quote.
    text = body("""
        On 3/3/25 10:00, Bob Smith wrote:
        > Hi Jane,
        >
        > Would Tuesday suit for a site visit?

        Tuesday suits us. Please use the side entrance.

        Jane
        """)
    assert new_text(text) == "Tuesday suits us. Please use the side entrance.\n\nJane"


def test_interleaved_reply() -> None:
    # Answers between the quoted questions (mutt, Thunderbird, Gmail "show trimmed").
    text = body("""
        Hi Bob,

        On Mon, Mar 3, 2025 at 10:00 AM Bob Smith <bob@acme-roofing.com> wrote:

        > Roughly how large is the roof?

        About 120 square metres, pitched.

        > Would Tuesday suit for a site visit?

        Tuesday after 2pm.

        Thanks,
        Jane
        """)
    assert new_text(text) == (
        "Hi Bob,\n\nAbout 120 square metres, pitched.\n\nTuesday after 2pm.\n\nThanks,\nJane"
    )


# --- plain text: what must be kept or emptied ------------------------------------------


def test_no_quotes_returned_intact() -> None:
    text = body("""
        Hello,

        I'd like a quote for replacing the gutters on a two-storey house in Leeds.
        Is next week possible? Our budget is around £1,500.

        Thanks,
        Priya
        """)
    assert new_text(text) == text.rstrip("\n")


def test_wrote_in_a_sentence_is_kept() -> None:
    # "wrote:" mid-line, and at line end without a date or address, is prose.
    text = body("""
        Thanks for the quote. As my colleague wrote: we need it done by 14 March.
        Here is what our facilities manager wrote:
        the north side leaks at 10:00 every morning when the sprinklers run.
        """)
    assert new_text(text) == text.rstrip("\n")


def test_attribution_sharing_a_line_with_new_text() -> None:
    # Some mobile clients put no line break before the attribution (talon's corpus).
    text = "Works for me On Mon, Mar 3, 2025 at 10:00 AM, bob@acme-roofing.com wrote:\n> Hi\n"
    assert new_text(text) == "Works for me"


def test_everything_quoted_is_empty() -> None:
    assert new_text(QUOTE) == ""
    assert new_text("On 3/3/25 10:00, Bob Smith wrote:\n" + QUOTE) == ""
    # A forward with no note: all of it is someone else's text.
    forward = "From: Bob <bob@acme-roofing.com>\nSent: Monday\nTo: Jane\nSubject: Hi\n\nHello\n"
    assert new_text(forward) == ""
    assert new_text("") == ""
    assert new_text("\n \n", "") == ""


def test_only_a_footer_is_still_returned() -> None:
    # An empty iPhone reply: the footer is the sender's only own text, so it is kept.
    text = "Sent from my iPhone\n\n> On 3 Mar 2025, at 10:00, Bob <bob@acme-roofing.com> wrote:\n"
    assert new_text(text) == "Sent from my iPhone"


def test_plain_text_preferred_over_html() -> None:
    html = "<div>HTML version</div><blockquote>quoted</blockquote>"
    assert new_text("Plain version\n\n> quoted\n", html) == "Plain version"


# --- HTML-only mail -----------------------------------------------------------------------


def test_gmail_html() -> None:
    # Gmail web HTML: gmail_quote container with gmail_attr and blockquote.gmail_quote;
    # the signature comes with a "-- " prefix span before it.
    html = (
        '<div dir="ltr">Tuesday at 2pm works.<div><br></div><div>Thanks,</div><div>Jane</div>'
        '<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>'
        '<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">'
        '<div dir="ltr">Jane Doe<div>Facilities Manager</div></div></div></div><br>'
        '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
        'On Mon, Mar 3, 2025 at 10:00 AM Bob Smith &lt;<a href="mailto:bob@acme-roofing.com">'
        "bob@acme-roofing.com</a>&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        'rgb(204,204,204);padding-left:1ex"><div dir="ltr">Hi Jane,<div><br></div>'
        "<div>Would Tuesday suit for a site visit?</div></div></blockquote></div>\n"
    )
    assert lines(new_text("", html)) == ["Tuesday at 2pm works.", "Thanks,", "Jane"]


def test_gmail_indent_blockquote_is_not_a_quote() -> None:
    # Gmail's "Indent more" button: blockquote with border:none, part of the new text.
    html = (
        '<div dir="ltr">Our requirements:<blockquote style="margin:0 0 0 40px;border:none;'
        'padding:0px"><div>- about 120 m2, pitched roof</div></blockquote><div>Thanks</div></div>'
    )
    assert lines(new_text("", html)) == [
        "Our requirements:",
        "- about 120 m2, pitched roof",
        "Thanks",
    ]


def test_outlook_web_html_divrplyfwdmsg() -> None:
    # Outlook on the web / new Outlook: appendonsend marker, <hr>, divRplyFwdMsg header,
    # and the original body as a sibling after it.
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} '
        '</style></head><body dir="ltr"><div class="elementToProof" style="font-family: Aptos,'
        ' Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">Sounds good,'
        ' see you Tuesday.</div><div id="appendonsend"></div><hr style="display:inline-block;'
        'width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, '
        'sans-serif" style="font-size:11pt" color="#000000"><b>From:</b> Bob Smith &lt;'
        "bob@acme-roofing.com&gt;<br><b>Sent:</b> Monday, March 3, 2025 10:00<br><b>To:</b> "
        "Jane Doe &lt;jane.doe@northwind.example&gt;<br><b>Subject:</b> Roof repair enquiry"
        '</font><div>&nbsp;</div></div><div><div dir="ltr">Hi Jane, would Tuesday suit for a'
        " site visit?</div></div></body></html>"
    )
    assert new_text("", html) == "Sounds good, see you Tuesday."


def test_outlook_desktop_html_hr_from_block() -> None:
    # Outlook for Windows HTML (Word engine): MsoNormal paragraphs, a border-top div or
    # <hr>, then a bold From/Sent/To/Subject block; source wrapped mid-paragraph.
    html = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<!--[if gte mso 9]><xml><o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]-->
</head><body lang=EN-GB link="#0563C1"><div class=WordSection1><p class=MsoNormal>Hi Bob,
<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Thanks, Tuesday
works for us.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><hr size=2 width="100%"
align=center><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>
<p class=MsoNormal><b><span lang=EN-US>From:</span></b><span lang=EN-US> Bob Smith
&lt;bob@acme-roofing.com&gt; <br><b>Sent:</b> Monday, March 3, 2025 10:00 AM<br><b>To:</b>
Jane Doe &lt;jane.doe@northwind.example&gt;<br><b>Subject:</b> Roof repair enquiry<o:p></o:p>
</span></p></div><p class=MsoNormal>Hi Jane, would Tuesday suit?<o:p></o:p></p></div>
</body></html>"""
    assert lines(new_text("", html)) == ["Hi Bob,", "Thanks, Tuesday works for us."]


def test_apple_mail_html() -> None:
    # Apple Mail (macOS) HTML: attribution inside <blockquote type="cite">.
    html = (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
        '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: '
        'after-white-space;">Tuesday works, thanks.<div><br></div><div>Jane</div><div><br '
        'id="lineBreakAtBeginningOfMessage"><div><br><blockquote type="cite"><div>On 3 Mar '
        "2025, at 10:00, Bob Smith &lt;bob@acme-roofing.com&gt; wrote:</div><br "
        'class="Apple-interchange-newline"><div><div>Hi Jane,</div><div><br></div><div>Would '
        "Tuesday suit for a site visit?</div></div></blockquote></div><br></div></body></html>"
    )
    assert lines(new_text("", html)) == ["Tuesday works, thanks.", "Jane"]


def test_thunderbird_html_top_post() -> None:
    # Thunderbird HTML with "reply above the quote": moz-cite-prefix + blockquote cite.
    html = body("""
        <html>
          <head>
            <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
          </head>
          <body>
            <p>Tuesday suits us. Please use the side entrance.</p>
            <p>Jane<br>
            </p>
            <div class="moz-cite-prefix">On 3/3/25 10:00, Bob Smith wrote:<br>
            </div>
            <blockquote type="cite"
              cite="mid:CAF1234abcd@mail.acme-roofing.com">
              <div dir="ltr">Hi Jane,<br>
                Would Tuesday suit for a site visit?</div>
            </blockquote>
          </body>
        </html>
        """)
    assert lines(new_text("", html)) == ["Tuesday suits us. Please use the side entrance.", "Jane"]


def test_thunderbird_html_bottom_post_with_signature() -> None:
    # Thunderbird's default layout: quote first, reply below, then div.moz-signature.
    html = body("""
        <html>
          <body>
            <div class="moz-cite-prefix">On 3/3/25 10:00, Bob Smith wrote:<br>
            </div>
            <blockquote type="cite" cite="mid:CAF1234abcd@mail.acme-roofing.com">
              <div dir="ltr">Would Tuesday suit for a site visit?</div>
            </blockquote>
            <p>Tuesday suits us. Please use the side entrance.</p>
            <p>Jane</p>
            <div class="moz-signature">-- <br>
              Jane Doe<br>
              Northwind Traders</div>
          </body>
        </html>
        """)
    assert lines(new_text("", html)) == ["Tuesday suits us. Please use the side entrance.", "Jane"]


def test_yahoo_html() -> None:
    # Yahoo Mail web: reply in a yahoo-style-wrap div, quote in div.yahoo_quoted.
    html = body("""
        <html><head></head><body><div class="ydp1b2c3d4yahoo-style-wrap" style="font-family:
        Helvetica Neue, Helvetica, Arial, sans-serif;font-size:13px;"><div></div>
                <div dir="ltr" data-setdir="false">Sounds good, please send the invoice.</div>
                <div dir="ltr" data-setdir="false"><br></div><div dir="ltr">Jane</div></div>
                <div id="yahoo_quoted_8352611234" class="yahoo_quoted">
                    <div style="font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;">
                        <div>
                            On Monday, March 3, 2025 at 10:00:00 AM GMT+1, Bob Smith
                            &lt;bob@acme-roofing.com&gt; wrote:
                        </div>
                        <div><br></div>
                        <div><div dir="ltr">Hi Jane, the work is done.</div></div>
                    </div>
                </div></body></html>
        """)
    assert lines(new_text("", html)) == ["Sounds good, please send the invoice.", "Jane"]


def test_zimbra_html() -> None:
    # Zimbra web client: hr#zwchr divider, __HEADERS__ and __QUOTED_TEXT__ markers.
    html = (
        '<html><body><div style="font-family: arial, helvetica, sans-serif; font-size: 12pt; '
        'color: #000000"><div>Tuesday is fine.</div><div><br></div><hr id="zwchr" '
        'data-marker="__DIVIDER__"><div data-marker="__HEADERS__"><b>From: </b>"Bob Smith" '
        '&lt;bob@acme-roofing.com&gt;<br><b>To: </b>"Jane Doe" &lt;jane.doe@northwind.example'
        "&gt;<br><b>Sent: </b>Monday, March 3, 2025 10:00:00 AM<br><b>Subject: </b>Roof repair"
        '<br></div><br><div data-marker="__QUOTED_TEXT__"><div dir="ltr">Hi Jane, would '
        "Tuesday suit?</div></div></div></body></html>"
    )
    assert new_text("", html) == "Tuesday is fine."


def test_generic_blockquote_with_attribution_before_it() -> None:
    # Roundcube: attribution paragraph outside the blockquote; the text pass removes it.
    html = (
        "<html><body><p>Tuesday works.</p>\n<p>On 2025-03-03 10:00, Bob Smith wrote:</p>\n"
        '<blockquote type="cite" style="padding: 0 0.4em; border-left: #1010ff 2px solid; '
        'margin: 0"><div>Would Tuesday suit?</div></blockquote></body></html>'
    )
    assert new_text("", html) == "Tuesday works."


def test_html_everything_quoted_is_empty() -> None:
    html = '<div class="gmail_quote"><blockquote>Would Tuesday suit?</blockquote></div>'
    assert new_text("", html) == ""


def test_hostile_html_does_not_hang() -> None:
    # Unclosed tags and comments: the scans here stay linear (the timeout guards it).
    assert new_text("", '<blockquote type="cite">' * 2000 + "x") == ""
    assert new_text("", "<blockquote>" * 2000 + "x") == "x"  # bare: content, see below
    assert new_text("", "<!--" * 2000 + "x") == ""


# --- Message convenience ------------------------------------------------------------------


def test_new_text_of_parsed_html_only_message() -> None:
    msg = EmailMessage()
    msg["From"] = "Jane Doe <jane.doe@northwind.example>"
    msg["To"] = "bob@acme-roofing.com"
    msg["Subject"] = "Re: Roof repair enquiry"
    msg["Message-ID"] = "<reply-1@northwind.example>"
    msg.set_content(
        '<div dir="ltr">Yes, Tuesday.</div><div class="gmail_quote"><div class="gmail_attr">'
        "On Mon, Mar 3, 2025 at 10:00 AM Bob Smith &lt;bob@acme-roofing.com&gt; wrote:</div>"
        "<blockquote>Would Tuesday suit?</blockquote></div>",
        subtype="html",
    )
    assert new_text_of(parse_message(msg.as_bytes())) == "Yes, Tuesday."


def test_new_text_of_parsed_plain_message() -> None:
    msg = EmailMessage()
    msg["From"] = "Jane Doe <jane.doe@northwind.example>"
    msg["To"] = "bob@acme-roofing.com"
    msg["Subject"] = "Re: Roof repair enquiry"
    msg.set_content("Yes, Tuesday.\n\nOn 3/3/25 10:00, Bob Smith wrote:\n> Would Tuesday suit?\n")
    assert new_text_of(parse_message(msg.as_bytes())) == "Yes, Tuesday."


# --- bare <blockquote> ---------------------------------------------------------------------


def test_bare_blockquote_in_a_notification_is_content() -> None:
    # Marketplaces and shops quote the customer's message in a plain <blockquote>.
    html = (
        "<p>Emily R. sent you a message about <b>Bookcase</b>:</p>"
        "<blockquote style='border-left:3px solid #ccc'>Could you build an alcove bookcase?"
        "</blockquote><p>Reply to this email to respond.</p>"
    )
    assert new_text("", html) == (
        "Emily R. sent you a message about Bookcase:\n\n"
        "Could you build an alcove bookcase?\n\nReply to this email to respond."
    )


def test_bare_blockquote_after_an_attribution_is_a_quote() -> None:
    html = (
        "<div>Tuesday works.</div><div>On Mon, 3 Mar 2025 at 10:00, Bob Smith "
        "&lt;bob@acme-roofing.com&gt; wrote:</div><blockquote>Would Tuesday suit?</blockquote>"
    )
    assert new_text("", html) == "Tuesday works."


@pytest.mark.parametrize(
    "attrs", ['type="cite"', "type=cite", 'class="tutanota_quote"', 'cite="mid:x@y"']
)
def test_marked_blockquote_is_a_quote_without_attribution(attrs: str) -> None:
    html = f"<div>Tuesday works.</div><blockquote {attrs}>Would Tuesday suit?</blockquote>"
    assert new_text("", html) == "Tuesday works."


@pytest.mark.parametrize(
    "history",
    [
        # QQ Mail / Foxmail
        '------------------ 原始邮件 ------------------\n发件人: "Bob" <bob@acme-roofing.com>;\n'
        "发送时间: 2025年3月3日(星期一) 上午10:00\n收件人: <anna@example.org>;\n主题: Quote",
        # Outlook, Russian UI, with and without the ruler
        "-----Исходное сообщение-----\nОт: Bob <bob@acme-roofing.com>\nОтправлено: 3 марта 2025 г."
        "\nКому: Anna\nТема: Quote",
        "От: Bob <bob@acme-roofing.com>\nОтправлено: 3 марта 2025 г. 10:00\nКому: Anna"
        "\nТема: Quote",
        # Outlook, Polish and Turkish UI; Naver (Korean) header block
        "Od: Bob <bob@acme-roofing.com>\nWysłano: 3 marca 2025\nDo: Anna\nTemat: Quote",
        "Kimden: Bob <bob@acme-roofing.com>\nGönderildi: 3 Mart 2025\nKime: Anna\nKonu: Quote",
        "보낸사람: Bob <bob@acme-roofing.com>\n받는사람: Anna\n날짜: 2025-03-03\n제목: Quote",
    ],
)
def test_non_latin_and_central_european_history_blocks(history: str) -> None:
    assert new_text(f"Passt, danke.\n\n{history}\n\n{QUOTE}") == "Passt, danke."


def test_a_line_ending_in_an_address_with_no_time_is_prose() -> None:
    text = "Please write to my colleague <ops@example.org>:\nshe handles quotes."
    assert new_text(text) == text
