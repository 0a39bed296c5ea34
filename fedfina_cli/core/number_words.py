"""Number words of the languages the report renders: 1-100, the multipliers, and the fractions
people say before them (ढाई लाख, ஒன்றரை லட்சம், two and a half lakh).

The Indo-Aryan languages name each number from 1 to 100 with its own word (पैंतीस, পঁয়ত্রিশ,
पस्तीस), so they are listed whole; the Dravidian ones build 21-99 from a ten and a unit
(இருபத்து நான்கு, இருபத்தைந்து, ಇಪ್ಪತ್ತನಾಲ್ಕು, ഇരുപത്തിയഞ്ച്, ఇరవై నాలుగు) and are generated,
written as one word (the unit's vowel joined to the ten) and as two.
(num2words has Bengali, Kannada and Telugu only, with spellings that differ from the common
spoken ones: ಇಪ್ಪತ್ತ್ ನಾಲ್ಕು, পঁইত্রিশ.) Variants are separated by "/". The Odia list was
written without a native speaker's check.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

Trie = dict[str, Any]  # a character -> the rest of the words ("" marks a word's end)

# 1..100, in order, one entry per number; "/" separates spellings of the same number.
_LISTED = {
    "hi": """एक दो तीन चार पाँच/पांच छह/छः/छे सात आठ नौ दस ग्यारह बारह तेरह चौदह पंद्रह/पन्द्रह सोलह सत्रह अठारह
        उन्नीस बीस इक्कीस बाईस तेईस चौबीस पच्चीस छब्बीस सत्ताईस अट्ठाईस/अठ्ठाईस उनतीस तीस इकतीस बत्तीस तैंतीस
        चौंतीस पैंतीस छत्तीस सैंतीस अड़तीस उनतालीस चालीस इकतालीस बयालीस तैंतालीस चवालीस/चौवालीस पैंतालीस
        छियालीस सैंतालीस अड़तालीस उनचास पचास इक्यावन बावन तिरेपन/तिरपन चौवन पचपन छप्पन सत्तावन अट्ठावन उनसठ साठ
        इकसठ बासठ तिरसठ चौंसठ पैंसठ छियासठ सड़सठ अड़सठ उनहत्तर सत्तर इकहत्तर बहत्तर तिहत्तर चौहत्तर पचहत्तर
        छिहत्तर सतहत्तर अठहत्तर उन्यासी/उनासी अस्सी इक्यासी बयासी तिरासी चौरासी पचासी छियासी सत्तासी अट्ठासी नवासी
        नब्बे इक्यानवे बानवे तिरानवे चौरानवे पचानवे छियानवे सत्तानवे अट्ठानवे निन्यानवे सौ""",
    "mr": """एक दोन तीन चार पाच सहा सात आठ नऊ दहा अकरा बारा तेरा चौदा पंधरा सोळा सतरा अठरा एकोणीस वीस
        एकवीस बावीस तेवीस चोवीस/चौवीस पंचवीस सव्वीस सत्तावीस अठ्ठावीस/अठ्ठावीस एकोणतीस तीस एकतीस बत्तीस
        तेहेतीस/तेहतीस चौतीस/चौतीस पस्तीस छत्तीस सदतीस अडतीस एकोणचाळीस चाळीस एक्केचाळीस बेचाळीस त्रेचाळीस
        चव्वेचाळीस पंचेचाळीस सेहेचाळीस सत्तेचाळीस अठ्ठेचाळीस एकोणपन्नास पन्नास एक्कावन्न बावन्न त्रेपन्न
        चोपन्न पंचावन्न छप्पन्न सत्तावन्न अठ्ठावन्न एकोणसाठ साठ एकसष्ट बासष्ट त्रेसष्ट चौसष्ट पासष्ट
        सहासष्ट सदुसष्ट अडुसष्ट एकोणसत्तर सत्तर एक्काहत्तर बाहत्तर त्र्याहत्तर चौऱ्याहत्तर पंच्याहत्तर
        शहात्तर सत्याहत्तर अठ्ठ्याहत्तर एकोणऐंशी ऐंशी एक्क्याऐंशी ब्याऐंशी त्र्याऐंशी चौऱ्याऐंशी पंच्याऐंशी
        शहाऐंशी सत्त्याऐंशी अठ्ठ्याऐंशी एकोणनव्वद नव्वद एक्क्याण्णव ब्याण्णव त्र्याण्णव चौऱ्याण्णव
        पंच्याण्णव शहाण्णव सत्त्याण्णव अठ्ठ्याण्णव नव्व्याण्णव शंभर""",
    "bn": """এক দুই/দু তিন চার পাঁচ ছয়/ছয় সাত আট নয়/নয় দশ এগারো বারো তেরো চোদ্দ/চৌদ্দ পনেরো ষোলো/ষোল সতেরো
        আঠারো উনিশ কুড়ি/বিশ একুশ বাইশ তেইশ চব্বিশ পঁচিশ ছাব্বিশ সাতাশ আঠাশ ঊনত্রিশ/উনত্রিশ ত্রিশ একত্রিশ
        বত্রিশ তেত্রিশ চৌত্রিশ পঁয়ত্রিশ/পঁইত্রিশ ছত্রিশ সাঁইত্রিশ আটত্রিশ ঊনচল্লিশ/উনচল্লিশ চল্লিশ
        একচল্লিশ বিয়াল্লিশ তেতাল্লিশ চুয়াল্লিশ পঁয়তাল্লিশ ছেচল্লিশ সাতচল্লিশ আটচল্লিশ ঊনপঞ্চাশ/উনপঞ্চাশ
        পঞ্চাশ একান্ন বাহান্ন তিপ্পান্ন চুয়ান্ন পঞ্চান্ন ছাপ্পান্ন সাতান্ন আটান্ন ঊনষাট/উনষাট ষাট একষট্টি
        বাষট্টি তেষট্টি চৌষট্টি পঁয়ষট্টি ছেষট্টি সাতষট্টি আটষট্টি ঊনসত্তর/উনসত্তর সত্তর একাত্তর বাহাত্তর
        তিয়াত্তর চুয়াত্তর পঁচাত্তর ছিয়াত্তর সাতাত্তর আটাত্তর ঊনআশি/উনআশি আশি একাশি বিরাশি তিরাশি চুরাশি
        পঁচাশি ছিয়াশি সাতাশি আটাশি ঊননব্বই/উননব্বই নব্বই একানব্বই বিরানব্বই তিরানব্বই চুরানব্বই পঁচানব্বই
        ছিয়ানব্বই সাতানব্বই আটানব্বই নিরানব্বই একশো/একশ/একশত""",
    "gu": """એક બે ત્રણ ચાર પાંચ છ સાત આઠ નવ દસ અગિયાર બાર તેર ચૌદ પંદર સોળ સત્તર અઢાર ઓગણીસ વીસ એકવીસ
        બાવીસ તેવીસ ચોવીસ પચ્ચીસ/પચીસ છવ્વીસ સત્તાવીસ અઠ્ઠાવીસ ઓગણત્રીસ ત્રીસ એકત્રીસ બત્રીસ તેત્રીસ ચોત્રીસ
        પાંત્રીસ છત્રીસ સાડત્રીસ આડત્રીસ ઓગણચાલીસ ચાલીસ એકતાલીસ બેતાલીસ તેતાલીસ ચુંમાલીસ પિસ્તાલીસ છેતાલીસ
        સુડતાલીસ અડતાલીસ ઓગણપચાસ પચાસ એકાવન બાવન ત્રેપન ચોપન પંચાવન છપ્પન સત્તાવન અઠ્ઠાવન ઓગણસાઠ સાઠ
        એકસઠ બાસઠ ત્રેસઠ ચોસઠ પાંસઠ છાસઠ સડસઠ અડસઠ ઓગણસિત્તેર સિત્તેર એકોતેર બોતેર તોંતેર ચુમોતેર પંચોતેર
        છોતેર સિત્યોતેર ઇઠ્યોતેર ઓગણએંસી એંસી એક્યાસી બ્યાસી ત્યાસી ચોર્યાસી પંચાસી છ્યાસી સિત્યાસી ઈઠ્યાસી
        નેવ્યાસી નેવું એકાણું બાણું ત્રાણું ચોરાણું પંચાણું છન્નું સત્તાણું અઠ્ઠાણું નવ્વાણું સો""",
    "pa": """ਇੱਕ ਦੋ ਤਿੰਨ ਚਾਰ ਪੰਜ ਛੇ ਸੱਤ ਅੱਠ ਨੌਂ/ਨੌ ਦਸ ਗਿਆਰਾਂ ਬਾਰਾਂ ਤੇਰਾਂ ਚੌਦਾਂ ਪੰਦਰਾਂ ਸੋਲਾਂ ਸਤਾਰਾਂ ਅਠਾਰਾਂ ਉੱਨੀ
        ਵੀਹ ਇੱਕੀ ਬਾਈ ਤੇਈ ਚੌਵੀ ਪੱਚੀ ਛੱਬੀ ਸਤਾਈ ਅਠਾਈ ਉਣੱਤੀ ਤੀਹ ਇਕੱਤੀ ਬੱਤੀ ਤੇਤੀ ਚੌਂਤੀ ਪੈਂਤੀ ਛੱਤੀ ਸੈਂਤੀ ਅਠੱਤੀ
        ਉਣਤਾਲੀ ਚਾਲੀ ਇਕਤਾਲੀ ਬਤਾਲੀ ਤਰਤਾਲੀ ਚੁਤਾਲੀ ਪੰਜਤਾਲੀ ਛਿਆਲੀ ਸੰਤਾਲੀ ਅਠਤਾਲੀ ਉਣੰਜਾ ਪੰਜਾਹ ਇਕਵੰਜਾ ਬਵੰਜਾ
        ਤਰਵੰਜਾ ਚਰਵੰਜਾ ਪਚਵੰਜਾ ਛਪੰਜਾ ਸਤਵੰਜਾ ਅਠਵੰਜਾ ਉਣਾਠ ਸੱਠ ਇਕਾਹਠ ਬਾਹਠ ਤਰੇਹਠ ਚੌਂਹਠ ਪੈਂਹਠ ਛਿਆਹਠ ਸਤਾਹਠ
        ਅਠਾਹਠ ਉਣੱਤਰ ਸੱਤਰ ਇਕਹੱਤਰ ਬਹੱਤਰ ਤਿਹੱਤਰ ਚੌਹੱਤਰ ਪਚੱਤਰ ਛਿਹੱਤਰ ਸਤੱਤਰ ਅਠੱਤਰ ਉਣਾਸੀ ਅੱਸੀ ਇਕਾਸੀ ਬਿਆਸੀ
        ਤਿਰਾਸੀ ਚੁਰਾਸੀ ਪਚਾਸੀ ਛਿਆਸੀ ਸਤਾਸੀ ਅਠਾਸੀ ਉਣਾਨਵੇਂ ਨੱਬੇ ਇਕਾਨਵੇਂ ਬਾਨਵੇਂ ਤਿਰਾਨਵੇਂ ਚੁਰਾਨਵੇਂ ਪਚਾਨਵੇਂ ਛਿਆਨਵੇਂ
        ਸਤਾਨਵੇਂ ਅਠਾਨਵੇਂ ਨੜਿੰਨਵੇਂ ਸੌ""",
    "or": """ଏକ ଦୁଇ ତିନି ଚାରି ପାଞ୍ଚ ଛଅ ସାତ ଆଠ ନଅ ଦଶ ଏଗାର ବାର ତେର ଚଉଦ ପନ୍ଦର ଷୋହଳ ସତର ଅଠର ଉଣେଇଶି କୋଡ଼ିଏ
        ଏକୋଇଶି ବାଇଶି ତେଇଶି ଚବିଶି ପଚିଶି ଛବିଶି ସତାଇଶି ଅଠାଇଶି ଅଣତିରିଶି ତିରିଶି/ତିରିଶ ଏକତିରିଶି ବତିଶି ତେତିଶି
        ଚଉତିରିଶି ପଇଁତିରିଶି ଛତିଶି ସଇଁତିରିଶି ଅଠତିରିଶି ଅଣଚାଳିଶି ଚାଳିଶି/ଚାଳିଶ ଏକଚାଳିଶି ବୟାଳିଶି ତେୟାଳିଶି ଚଉରାଳିଶି
        ପଞ୍ଚଚାଳିଶି ଛୟାଳିଶି ସତଚାଳିଶି ଅଠଚାଳିଶି ଅଣଚାଶ ପଚାଶ ଏକାବନ ବାଉନ ତେପନ ଚଉବନ ପଞ୍ଚାବନ ଛପନ ସତାବନ ଅଠାବନ
        ଅଣଷଠି ଷାଠିଏ/ଷାଠି ଏକଷଠି ବାଷଠି ତେଷଠି ଚଉଷଠି ପଞ୍ଚଷଠି ଛଅଷଠି ସତଷଠି ଅଠଷଠି ଅଣସ୍ତରି ସତୁରି ଏକସ୍ତରି ବାସ୍ତରି
        ତେସ୍ତରି ଚଉସ୍ତରି ପଞ୍ଚସ୍ତରି ଛଅସ୍ତରି ସତସ୍ତରି ଅଠସ୍ତରି ଅଣାଅଶୀ ଅଶୀ ଏକାଅଶୀ ବୟାଅଶୀ ତେୟାଅଶୀ ଚଉରାଅଶୀ ପଞ୍ଚାଅଶୀ
        ଛୟାଅଶୀ ସତାଅଶୀ ଅଠାଅଶୀ ଅଣନବେ ନବେ ଏକାନବେ ବୟାନବେ ତେୟାନବେ ଚଉରାନବେ ପଞ୍ଚାନବେ ଛୟାନବେ ସତାନବେ ଅଠାନବେ
        ଅନେଶତ ଶହେ/ଶହ""",
}

# The Dravidian languages: 1-19, the tens, 100, and for each ten its stem before a vowel
# (ending in a virama, the vowel joins it) and before a consonant.
_BUILT: dict[str, dict[str, object]] = {
    "ta": {
        "units": "ஒன்று/ஒன்னு இரண்டு/ரெண்டு மூன்று/மூணு நான்கு/நாலு ஐந்து/அஞ்சு ஆறு ஏழு எட்டு ஒன்பது",
        "teens": "பத்து பதினொன்று/பதினொன்னு பன்னிரண்டு/பன்னெண்டு பதிமூன்று பதினான்கு/பதினாலு பதினைந்து/பதினஞ்சு "
                 "பதினாறு பதினேழு பதினெட்டு பத்தொன்பது",
        "tens": "இருபது முப்பது நாற்பது ஐம்பது அறுபது எழுபது எண்பது தொண்ணூறு",
        "before_vowel": "இருபத்த் முப்பத்த் நாற்பத்த் ஐம்பத்த் அறுபத்த் எழுபத்த் எண்பத்த் தொண்ணூற்ற்",
        "before_consonant": "இருபத்து முப்பத்து நாற்பத்து ஐம்பத்து அறுபத்து எழுபத்து எண்பத்து தொண்ணூற்று",
        "hundred": "நூறு",
    },
    "te": {
        "units": "ఒకటి రెండు మూడు నాలుగు ఐదు ఆరు ఏడు ఎనిమిది తొమ్మిది",
        "teens": "పది పదకొండు పన్నెండు పదమూడు పద్నాలుగు పదిహేను పదహారు పదిహేడు పద్దెనిమిది పందొమ్మిది",
        "tens": "ఇరవై ముప్పై/ముప్ఫై నలభై యాభై అరవై డెబ్బై ఎనభై తొంభై",
        "hundred": "వంద/నూరు",
    },
    "kn": {
        "units": "ಒಂದು ಎರಡು ಮೂರು ನಾಲ್ಕು ಐದು ಆರು ಏಳು ಎಂಟು ಒಂಬತ್ತು",
        "teens": "ಹತ್ತು ಹನ್ನೊಂದು ಹನ್ನೆರಡು ಹದಿಮೂರು ಹದಿನಾಲ್ಕು ಹದಿನೈದು ಹದಿನಾರು ಹದಿನೇಳು ಹದಿನೆಂಟು ಹತ್ತೊಂಬತ್ತು",
        "tens": "ಇಪ್ಪತ್ತು ಮೂವತ್ತು ನಲವತ್ತು ಐವತ್ತು ಅರವತ್ತು ಎಪ್ಪತ್ತು ಎಂಬತ್ತು ತೊಂಬತ್ತು",
        "before_vowel": "ಇಪ್ಪತ್ತ್ ಮೂವತ್ತ್ ನಲವತ್ತ್ ಐವತ್ತ್ ಅರವತ್ತ್ ಎಪ್ಪತ್ತ್ ಎಂಬತ್ತ್ ತೊಂಬತ್ತ್",
        "before_consonant": "ಇಪ್ಪತ್ತ ಮೂವತ್ತ ನಲವತ್ತ ಐವತ್ತ ಅರವತ್ತ ಎಪ್ಪತ್ತ ಎಂಬತ್ತ ತೊಂಬತ್ತ",
        "hundred": "ನೂರು",
    },
    "ml": {
        "units": "ഒന്ന് രണ്ട് മൂന്ന് നാല് അഞ്ച് ആറ് ഏഴ് എട്ട് ഒമ്പത്/ഒൻപത്",
        "teens": "പത്ത് പതിനൊന്ന് പന്ത്രണ്ട് പതിമൂന്ന് പതിനാല് പതിനഞ്ച് പതിനാറ് പതിനേഴ് പതിനെട്ട് പത്തൊമ്പത്",
        "tens": "ഇരുപത് മുപ്പത് നാല്പത്/നാൽപത് അമ്പത്/അൻപത് അറുപത് എഴുപത് എൺപത് തൊണ്ണൂറ്",
        "before_vowel": "ഇരുപത്തിയ് മുപ്പത്തിയ് നാല്പത്തിയ് അമ്പത്തിയ് അറുപത്തിയ് എഴുപത്തിയ് എൺപത്തിയ് തൊണ്ണൂറ്റിയ്",
        "before_consonant": "ഇരുപത്തി മുപ്പത്തി നാല്പത്തി അമ്പത്തി അറുപത്തി എഴുപത്തി എൺപത്തി തൊണ്ണൂറ്റി",
        "hundred": "നൂറ്",
    },
}

# Said before a number or as one: "one" as an adjective, halves and quarters of a number.
_OTHER = {
    "ஒரு": 1, "ஓர்": 1, "ఒక": 1, "ಒಂದೂವರೆ": 1.5, "ഒന്നര": 1.5, "ఒకటిన్నర": 1.5,
    "ஒன்றரை": 1.5, "இரண்டரை": 2.5, "ரெண்டரை": 2.5, "மூன்றரை": 3.5,
    "डेढ़": 1.5, "डेढ": 1.5, "ढाई": 2.5, "दीड": 1.5, "अडीच": 2.5, "দেড়": 1.5, "আড়াই": 2.5,
    "દોઢ": 1.5, "અઢી": 2.5, "ਡੇਢ": 1.5, "ਢਾਈ": 2.5, "ଦେଢ଼": 1.5, "ଅଢ଼େଇ": 2.5,
    "half": 0.5, "hundred": 100,
}
# X and a half, a quarter more, a quarter less: साढ़े तीन = 3.5, सवा दो = 2.25, पौने दो = 1.75.
FRACTIONS = {"साढ़े": 0.5, "साढे": 0.5, "सवा": 0.25, "पौने": -0.25, "साडे": 0.5, "सव्वा": 0.25, "पावणे": -0.25,
             "সাড়ে": 0.5, "সোয়া": 0.25, "পৌনে": -0.25, "સાડા": 0.5, "સવા": 0.25, "પોણા": -0.25, "ਸਾਢੇ": 0.5,
             "ਸਵਾ": 0.25, "ਪੌਣੇ": -0.25}
MULTIPLIERS = {
    "thousand": 1e3, "k": 1e3, "हज़ार": 1e3, "हजार": 1e3,
    "lakh": 1e5, "lakhs": 1e5, "lac": 1e5, "lacs": 1e5, "लाख": 1e5,
    "million": 1e6, "crore": 1e7, "crores": 1e7, "cr": 1e7, "करोड़": 1e7, "करोड": 1e7, "कोटी": 1e7,
    "ஆயிரம்": 1e3, "லட்சம்": 1e5, "லட்சத்து": 1e5, "கோடி": 1e7,
    "হাজার": 1e3, "লাখ": 1e5, "লক্ষ": 1e5, "কোটি": 1e7,
    "હજાર": 1e3, "લાખ": 1e5, "કરોડ": 1e7, "ਹਜ਼ਾਰ": 1e3, "ਲੱਖ": 1e5, "ਕਰੋੜ": 1e7,
    "వేలు": 1e3, "వెయ్యి": 1e3, "లక్ష": 1e5, "లక్షలు": 1e5, "కోటి": 1e7, "కోట్లు": 1e7,
    "ಸಾವಿರ": 1e3, "ಲಕ್ಷ": 1e5, "ಕೋಟಿ": 1e7, "ആയിരം": 1e3, "ലക്ഷം": 1e5, "കോടി": 1e7,
    "ହଜାର": 1e3, "ଲକ୍ଷ": 1e5, "କୋଟି": 1e7,
}
ENGLISH_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}


def _spellings(entry: str) -> list[str]:
    return entry.split("/")


def _joined(stem_before_vowel: str, stem_before_consonant: str, unit: str) -> str:
    """A ten and a unit as one word: a unit that starts with a vowel takes its vowel sign onto the
    stem's last consonant (இருபத்த் + ஐந்து = இருபத்தைந்து); any other follows the stem."""
    first = ord(unit[0]) & 0x7F  # the letter's place in its script's block
    if 0x05 <= first <= 0x14:  # an independent vowel: அ … ஔ
        stem = stem_before_vowel[:-1]  # without its virama
        sign = "" if first == 0x05 else chr(ord(unit[0]) + 0x38)  # ஐ (0x10) -> ை (0x48)
        return stem + sign + unit[1:]
    return stem_before_consonant + unit


def _build(language: dict[str, object]) -> dict[str, float]:
    words: dict[str, float] = {}
    units = [_spellings(u) for u in str(language["units"]).split()]
    for n, spellings in enumerate(units, start=1):
        words.update(dict.fromkeys(spellings, n))
    for n, teen in enumerate(str(language["teens"]).split(), start=10):
        words.update(dict.fromkeys(_spellings(teen), n))
    tens = str(language["tens"]).split()
    vowel_stems = str(language.get("before_vowel", "")).split()
    consonant_stems = str(language.get("before_consonant", "")).split()
    for t, ten in enumerate(tens):
        value = 20 + 10 * t
        for spelling in _spellings(ten):
            words[spelling] = value
            for u, unit_spellings in enumerate(units, start=1):
                for unit in unit_spellings:
                    words[f"{spelling} {unit}"] = value + u  # ఇరవై నాలుగు, ಇಪ್ಪತ್ತು ನಾಲ್ಕು
                    if vowel_stems:
                        words[f"{consonant_stems[t]} {unit}"] = value + u  # இருபத்து நான்கு
                        words[_joined(vowel_stems[t], consonant_stems[t], unit)] = value + u
    words.update(dict.fromkeys(_spellings(str(language["hundred"])), 100))
    return words


def _all_words() -> dict[str, float]:
    words: dict[str, float] = {}
    for listed in _LISTED.values():
        for n, entry in enumerate(listed.split(), start=1):
            words.update(dict.fromkeys(_spellings(entry), n))
    for language in _BUILT.values():
        words.update(_build(language))
    words.update(ENGLISH_UNITS)
    words.update(_OTHER)
    return words


# Under IGNORECASE four non-ASCII letters match ASCII ones: İ and ı match i, ſ matches s and
# the Kelvin sign K matches k. A word matched through them is looked up as the letters it
# matched: "ſix" is six (its lower case was no key: a KeyError that failed the conversation).
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def word_key(word: str) -> str:
    """The key of a word matched case-insensitively, in these tables and the others like them."""
    return word.translate(_ASCII_FOLD).lower()


def _nfc(table: dict[str, float]) -> dict[str, float]:
    """Nukta letters come precomposed (ज़, U+095B) or as two code points (ज + ़); NFC makes both
    the second, in the text and in these words alike."""
    return {unicodedata.normalize("NFC", k): v for k, v in table.items()}


WORDS = _nfc(_all_words())
FRACTIONS = _nfc(FRACTIONS)
MULTIPLIERS = _nfc(MULTIPLIERS)


def pattern_of(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, as a prefix tree: an alternation of
    1,700 words made the figure check's word search ten times slower (Python's re tries
    each alternative in turn). Longer words are tried first, as in a longest-first list."""
    trie: Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: Trie) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)
