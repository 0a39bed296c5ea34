"""The console's own words in English, Hindi and Tamil (SPEC "The console": readable in Hindi and
Tamil). The calls themselves (names, transcripts, summaries) are shown in whatever script they
are in; these are the labels, headings, buttons and messages around them. The ledger's own
records (stage names, audit lines, error messages) stay as recorded.

A person picks a language with the links in the header (kept in a cookie); until then the
browser's Accept-Language decides; English otherwise. A phrase missing here is shown in English.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

LANGUAGES = {"en": "English", "hi": "हिन्दी", "ta": "தமிழ்"}
COOKIE = "fedfina_lang"

_HINDI = {
    "Skip to content": "मुख्य सामग्री पर जाएँ",
    "Conversations": "बातचीत",
    "Operations": "संचालन",
    "Sign out": "साइन आउट",
    "Administrator": "व्यवस्थापक",
    "Loan officer": "ऋण अधिकारी",
    "admin": "व्यवस्थापक",
    "Language": "भाषा",
    "Sign in": "साइन इन",
    "Sign in to the fedfina console": "fedfina कंसोल में साइन इन करें",
    "Enter your work email address. If it may use the console, we email you a sign-in link that works once, "
    "for 15 minutes.": "अपना कार्यालय ईमेल पता लिखें। अगर यह पता कंसोल इस्तेमाल कर सकता है, तो हम आपको साइन-इन "
                       "लिंक ईमेल करेंगे, जो एक बार, 15 मिनट तक काम करेगा।",
    "Email address": "ईमेल पता",
    "Email me a sign-in link": "मुझे साइन-इन लिंक ईमेल करें",
    "Check your email": "अपना ईमेल देखें",
    "If this address may use the console, a sign-in link is on its way. It works once, for 15 minutes.":
        "अगर यह पता कंसोल इस्तेमाल कर सकता है, तो साइन-इन लिंक भेजा जा रहा है। यह एक बार, 15 मिनट तक काम करेगा।",
    "Use another address": "दूसरा पता इस्तेमाल करें",
    "Press the button to sign in to the fedfina console on this device.":
        "इस डिवाइस पर fedfina कंसोल में साइन इन करने के लिए बटन दबाएँ।",
    "Conversations sent to you": "आपको भेजी गई बातचीत",
    "Search": "खोजें",
    "conv_…, a name, or the phone's last 4 digits": "conv_…, नाम, या फ़ोन के आख़िरी 4 अंक",
    "Status": "स्थिति",
    "Any": "कोई भी",
    "Account": "खाता",
    "From": "से",
    "To": "तक",
    "Show": "दिखाएँ",
    "Clear": "साफ़ करें",
    "Conversations, newest first": "बातचीत, नई पहले",
    "Received": "प्राप्त",
    "received": "प्राप्त",
    "Applicant": "आवेदक",
    "Phone": "फ़ोन",
    "Sent to": "किसे भेजी गई",
    "No conversation matches these filters.": "इन शर्तों से कोई बातचीत मेल नहीं खाती।",
    "No conversations yet.": "अभी कोई बातचीत नहीं।",
    "Pages": "पन्ने",
    "First page": "पहला पन्ना",
    "Older calls": "पुरानी कॉल",
    "queued": "कतार में",
    "processing": "प्रक्रिया में",
    "completed": "पूर्ण",
    "failed": "विफल",
    "pending": "बाकी",
    "Applicant not named": "आवेदक का नाम नहीं",
    "Name removed with the files": "नाम फ़ाइलों के साथ हटाया गया",
    "Error": "त्रुटि",
    "Retention": "संग्रह अवधि",
    "On legal hold since {0} ({1})": "{0} से कानूनी रोक पर ({1})",
    "On legal hold": "कानूनी रोक पर",
    "Files purged on {0}, past the account's retention": "खाते की संग्रह अवधि के बाद, {0} को फ़ाइलें हटाई गईं",
    "Retry": "फिर से प्रयास करें",
    "Send the email again": "ईमेल फिर भेजें",
    "Send the email again to me": "ईमेल मुझे फिर भेजें",
    "Release legal hold": "कानूनी रोक हटाएँ",
    "Reason for the hold": "रोक का कारण",
    "Reason (case number)": "कारण (मामला संख्या)",
    "Place legal hold": "कानूनी रोक लगाएँ",
    "Check these figures": "इन आँकड़ों की जाँच करें",
    "The summary gives these figures, but the call does not say them: check them with the applicant.":
        "सारांश में ये आँकड़े हैं, पर कॉल में ये नहीं कहे गए: आवेदक से इनकी पुष्टि करें।",
    "Overview": "सार",
    "Recording": "रिकॉर्डिंग",
    "No recording in storage.": "भंडार में कोई रिकॉर्डिंग नहीं।",
    "Transcript": "प्रतिलेख",
    "User": "आवेदक",  # the transcript's speaker: the applicant
    "Play from {0}": "{0} से चलाएँ",
    "No spoken turns.": "कोई बोली गई बात नहीं।",
    "The call's transcript is not in storage (not fetched yet, purged, or in storage these settings cannot "
    "reach).": "कॉल का प्रतिलेख भंडार में नहीं है (अभी लाया नहीं गया, हटाया जा चुका, या ऐसे भंडार में है जहाँ ये "
               "सेटिंग नहीं पहुँचतीं)।",
    "Report": "रिपोर्ट",
    "Open the PDF": "PDF खोलें",
    "The report (PDF)": "रिपोर्ट (PDF)",
    "No report in storage.": "भंडार में कोई रिपोर्ट नहीं।",
    "Stages": "चरण",
    "Stage": "चरण",
    "State": "स्थिति",
    "Tries": "प्रयास",
    "Finished": "समाप्त",
    "Took": "समय लगा",
    "No stage has run yet.": "अभी कोई चरण नहीं चला।",
    "Audit log": "ऑडिट लॉग",
    "When": "कब",
    "Step": "चरण",
    "Event": "घटना",
    "Message": "संदेश",
    "As of {0} · every host sharing this ledger": "{0} तक · इस लेजर को साझा करने वाले सभी होस्ट",
    "Queued": "कतार में",
    "In flight": "चल रही",
    "In this process": "इस प्रोसेस में",
    "Workers": "वर्कर",
    "Calls per hour, last 24 hours (UTC)": "प्रति घंटा कॉल, पिछले 24 घंटे (UTC)",
    "{0} calls": "{0} कॉल",
    "Failures by reason": "कारण अनुसार विफलताएँ",
    "Reason": "कारण",
    "No failed conversations.": "कोई विफल बातचीत नहीं।",
    "e.g.": "उदा.",
    "Providers": "सेवा प्रदाता",
    "Service": "सेवा",
    "Calls, last 5 min": "कॉल, पिछले 5 मिनट",
    "Rate-limited (429)": "दर-सीमित (429)",
    "Failed": "विफल",
    "No calls in the last 5 minutes.": "पिछले 5 मिनट में कोई कॉल नहीं।",
    "{0}, this process's pace: {1}": "{0}, इस प्रोसेस की गति: {1}",
    "Host": "होस्ट",
    "Process": "प्रोसेस",
    "Started": "शुरू",
    "Last heartbeat": "आख़िरी हार्टबीट",
    "stale": "पुराना",
    "No worker registered.": "कोई वर्कर पंजीकृत नहीं।",
    "Queued again: a worker will process it shortly.": "फिर से कतार में: एक वर्कर जल्द इसे संसाधित करेगा।",
    "Not queued: it is queued or being processed already.":
        "कतार में नहीं डाली: यह पहले से कतार में है या संसाधित हो रही है।",
    "The email was sent again.": "ईमेल फिर भेजा गया।",
    "The email could not be sent; the audit log below says why.": "ईमेल नहीं भेजा जा सका; कारण नीचे ऑडिट लॉग में है।",
    "Placed on legal hold: purge will not delete its files.": "कानूनी रोक लगी: purge इसकी फ़ाइलें नहीं हटाएगा।",
    "Legal hold released: purge deletes its files once past retention.":
        "कानूनी रोक हटी: संग्रह अवधि के बाद purge इसकी फ़ाइलें हटाएगा।",
    "Not found": "नहीं मिला",
    "No such conversation, or it was not sent to you.": "ऐसी कोई बातचीत नहीं, या यह आपको नहीं भेजी गई।",
    "No such page.": "ऐसा कोई पन्ना नहीं।",
    "Link used or expired": "लिंक इस्तेमाल हो चुका या पुराना हो गया",
    "This sign-in link was used already or is over 15 minutes old. Ask for a new one.":
        "यह साइन-इन लिंक पहले इस्तेमाल हो चुका है या 15 मिनट से पुराना है। नया लिंक माँगें।",
    "Ask for a new link": "नया लिंक माँगें",
    "Too many requests": "बहुत अधिक अनुरोध",
    "Too many sign-in links were asked for; wait 15 minutes and try again.":
        "बहुत सारे साइन-इन लिंक माँगे गए; 15 मिनट रुककर फिर कोशिश करें।",
    "Refused": "अस्वीकार",
    "Sign in to use the console.": "कंसोल इस्तेमाल करने के लिए साइन इन करें।",
}

_TAMIL = {
    "Skip to content": "உள்ளடக்கத்துக்குச் செல்",
    "Conversations": "உரையாடல்கள்",
    "Operations": "செயல்பாடுகள்",
    "Sign out": "வெளியேறு",
    "Administrator": "நிர்வாகி",
    "Loan officer": "கடன் அலுவலர்",
    "admin": "நிர்வாகி",
    "Language": "மொழி",
    "Sign in": "உள்நுழை",
    "Sign in to the fedfina console": "fedfina கன்சோலில் உள்நுழையவும்",
    "Enter your work email address. If it may use the console, we email you a sign-in link that works once, "
    "for 15 minutes.": "உங்கள் அலுவலக மின்னஞ்சல் முகவரியை உள்ளிடவும். இந்த முகவரி கன்சோலைப் பயன்படுத்தலாம் "
                       "என்றால், ஒருமுறை மட்டும், 15 நிமிடங்கள் வேலை செய்யும் உள்நுழைவு இணைப்பை அனுப்புவோம்.",
    "Email address": "மின்னஞ்சல் முகவரி",
    "Email me a sign-in link": "உள்நுழைவு இணைப்பை அனுப்பு",
    "Check your email": "உங்கள் மின்னஞ்சலைப் பாருங்கள்",
    "If this address may use the console, a sign-in link is on its way. It works once, for 15 minutes.":
        "இந்த முகவரி கன்சோலைப் பயன்படுத்தலாம் என்றால், உள்நுழைவு இணைப்பு அனுப்பப்படுகிறது. அது ஒருமுறை மட்டும், "
        "15 நிமிடங்கள் வேலை செய்யும்.",
    "Use another address": "வேறு முகவரியைப் பயன்படுத்து",
    "Press the button to sign in to the fedfina console on this device.":
        "இந்தச் சாதனத்தில் fedfina கன்சோலில் உள்நுழைய பொத்தானை அழுத்தவும்.",
    "Conversations sent to you": "உங்களுக்கு அனுப்பப்பட்ட உரையாடல்கள்",
    "Search": "தேடு",
    "conv_…, a name, or the phone's last 4 digits": "conv_…, பெயர், அல்லது தொலைபேசியின் கடைசி 4 இலக்கங்கள்",
    "Status": "நிலை",
    "Any": "எதுவும்",
    "Account": "கணக்கு",
    "From": "முதல்",
    "To": "வரை",
    "Show": "காட்டு",
    "Clear": "அழி",
    "Conversations, newest first": "உரையாடல்கள், புதியவை முதலில்",
    "Received": "பெறப்பட்டது",
    "received": "பெறப்பட்டது",
    "Applicant": "விண்ணப்பதாரர்",
    "Phone": "தொலைபேசி",
    "Sent to": "அனுப்பப்பட்டது",
    "No conversation matches these filters.": "இந்த வடிகட்டிகளுக்குப் பொருந்தும் உரையாடல் இல்லை.",
    "No conversations yet.": "இன்னும் உரையாடல்கள் இல்லை.",
    "Pages": "பக்கங்கள்",
    "First page": "முதல் பக்கம்",
    "Older calls": "பழைய அழைப்புகள்",
    "queued": "வரிசையில்",
    "processing": "செயலாக்கத்தில்",
    "completed": "முடிந்தது",
    "failed": "தோல்வி",
    "pending": "நிலுவையில்",
    "Applicant not named": "விண்ணப்பதாரர் பெயர் இல்லை",
    "Name removed with the files": "பெயர் கோப்புகளுடன் நீக்கப்பட்டது",
    "Error": "பிழை",
    "Retention": "சேமிப்புக் காலம்",
    "On legal hold since {0} ({1})": "{0} முதல் சட்டத் தடையில் ({1})",
    "On legal hold": "சட்டத் தடையில்",
    "Files purged on {0}, past the account's retention": "கணக்கின் சேமிப்புக் காலம் முடிந்ததால், {0} அன்று கோப்புகள் நீக்கப்பட்டன",
    "Retry": "மீண்டும் முயல்",
    "Send the email again": "மின்னஞ்சலை மீண்டும் அனுப்பு",
    "Send the email again to me": "மின்னஞ்சலை எனக்கு மீண்டும் அனுப்பு",
    "Release legal hold": "சட்டத் தடையை நீக்கு",
    "Reason for the hold": "தடைக்கான காரணம்",
    "Reason (case number)": "காரணம் (வழக்கு எண்)",
    "Place legal hold": "சட்டத் தடை வை",
    "Check these figures": "இந்த எண்களைச் சரிபார்க்கவும்",
    "The summary gives these figures, but the call does not say them: check them with the applicant.":
        "சுருக்கத்தில் இந்த எண்கள் உள்ளன, ஆனால் அழைப்பில் அவை சொல்லப்படவில்லை: விண்ணப்பதாரரிடம் சரிபார்க்கவும்.",
    "Overview": "கண்ணோட்டம்",
    "Recording": "பதிவு",
    "No recording in storage.": "சேமிப்பில் பதிவு இல்லை.",
    "Transcript": "எழுத்துப்படி",
    "User": "விண்ணப்பதாரர்",  # the transcript's speaker: the applicant
    "Play from {0}": "{0} முதல் இயக்கு",
    "No spoken turns.": "பேசப்பட்ட பகுதிகள் இல்லை.",
    "The call's transcript is not in storage (not fetched yet, purged, or in storage these settings cannot "
    "reach).": "அழைப்பின் எழுத்துப்படி சேமிப்பில் இல்லை (இன்னும் எடுக்கப்படவில்லை, நீக்கப்பட்டது, அல்லது இந்த "
               "அமைப்புகள் அணுக முடியாத சேமிப்பில் உள்ளது).",
    "Report": "அறிக்கை",
    "Open the PDF": "PDF-ஐத் திற",
    "The report (PDF)": "அறிக்கை (PDF)",
    "No report in storage.": "சேமிப்பில் அறிக்கை இல்லை.",
    "Stages": "நிலைகள்",
    "Stage": "நிலை",
    "State": "நிலைமை",
    "Tries": "முயற்சிகள்",
    "Finished": "முடிந்த நேரம்",
    "Took": "எடுத்த நேரம்",
    "No stage has run yet.": "இன்னும் எந்த நிலையும் இயங்கவில்லை.",
    "Audit log": "தணிக்கைப் பதிவு",
    "When": "எப்போது",
    "Step": "படி",
    "Event": "நிகழ்வு",
    "Message": "செய்தி",
    "As of {0} · every host sharing this ledger": "{0} நிலவரம் · இந்தப் பேரேட்டைப் பகிரும் எல்லா ஹோஸ்ட்களும்",
    "Queued": "வரிசையில்",
    "In flight": "நடப்பில்",
    "In this process": "இந்தச் செயல்முறையில்",
    "Workers": "பணியாளர்கள்",
    "Calls per hour, last 24 hours (UTC)": "மணிக்கு அழைப்புகள், கடந்த 24 மணி நேரம் (UTC)",
    "{0} calls": "{0} அழைப்புகள்",
    "Failures by reason": "காரணம் வாரியாகத் தோல்விகள்",
    "Reason": "காரணம்",
    "No failed conversations.": "தோல்வியடைந்த உரையாடல்கள் இல்லை.",
    "e.g.": "எ.கா.",
    "Providers": "சேவை வழங்குநர்கள்",
    "Service": "சேவை",
    "Calls, last 5 min": "அழைப்புகள், கடந்த 5 நிமிடம்",
    "Rate-limited (429)": "வீத வரம்பு (429)",
    "Failed": "தோல்வி",
    "No calls in the last 5 minutes.": "கடந்த 5 நிமிடத்தில் அழைப்புகள் இல்லை.",
    "{0}, this process's pace: {1}": "{0}, இந்தச் செயல்முறையின் வேகம்: {1}",
    "Host": "ஹோஸ்ட்",
    "Process": "செயல்முறை",
    "Started": "தொடங்கியது",
    "Last heartbeat": "கடைசி இதயத்துடிப்பு",
    "stale": "காலாவதி",
    "No worker registered.": "பணியாளர் யாரும் பதிவில் இல்லை.",
    "Queued again: a worker will process it shortly.": "மீண்டும் வரிசையில்: ஒரு பணியாளர் விரைவில் செயலாக்குவார்.",
    "Not queued: it is queued or being processed already.":
        "வரிசையில் சேர்க்கவில்லை: ஏற்கனவே வரிசையில் அல்லது செயலாக்கத்தில் உள்ளது.",
    "The email was sent again.": "மின்னஞ்சல் மீண்டும் அனுப்பப்பட்டது.",
    "The email could not be sent; the audit log below says why.":
        "மின்னஞ்சலை அனுப்ப முடியவில்லை; காரணம் கீழே தணிக்கைப் பதிவில் உள்ளது.",
    "Placed on legal hold: purge will not delete its files.": "சட்டத் தடை வைக்கப்பட்டது: purge இதன் கோப்புகளை நீக்காது.",
    "Legal hold released: purge deletes its files once past retention.":
        "சட்டத் தடை நீக்கப்பட்டது: சேமிப்புக் காலம் முடிந்ததும் purge இதன் கோப்புகளை நீக்கும்.",
    "Not found": "கிடைக்கவில்லை",
    "No such conversation, or it was not sent to you.":
        "அப்படி ஒரு உரையாடல் இல்லை, அல்லது அது உங்களுக்கு அனுப்பப்படவில்லை.",
    "No such page.": "அப்படி ஒரு பக்கம் இல்லை.",
    "Link used or expired": "இணைப்பு பயன்படுத்தப்பட்டது அல்லது காலாவதியானது",
    "This sign-in link was used already or is over 15 minutes old. Ask for a new one.":
        "இந்த உள்நுழைவு இணைப்பு ஏற்கனவே பயன்படுத்தப்பட்டது அல்லது 15 நிமிடங்களுக்கு மேல் பழையது. "
        "புதியதைக் கேளுங்கள்.",
    "Ask for a new link": "புதிய இணைப்பைக் கேள்",
    "Too many requests": "அதிகமான கோரிக்கைகள்",
    "Too many sign-in links were asked for; wait 15 minutes and try again.":
        "அதிகமான உள்நுழைவு இணைப்புகள் கேட்கப்பட்டன; 15 நிமிடம் காத்திருந்து மீண்டும் முயலவும்.",
    "Refused": "மறுக்கப்பட்டது",
    "Sign in to use the console.": "கன்சோலைப் பயன்படுத்த உள்நுழையவும்.",
}

WORDS: dict[str, dict[str, str]] = {"hi": _HINDI, "ta": _TAMIL}


def language_of(request: Request) -> str:
    """?lang= (a header link), else the cookie it left, else Accept-Language's first we have."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    kept = request.cookies.get(COOKIE)
    if kept in LANGUAGES:
        return kept
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def translator(language: str) -> Callable[..., str]:
    """``t("Sign in")``, ``t("Play from {0}", "00:07")``: the phrase in ``language``, else as written."""
    table = WORDS.get(language, {})

    def t(text: str, *values: object) -> str:
        phrase = table.get(text, text)
        return phrase.format(*values) if values else phrase

    return t
